#include "asio/instance_pool.hpp"
#include "core/named_pipe_rules.hpp"
#include "core/platform.hpp"
#include "core/transport.hpp"
#include "framing/message_reader.hpp"
#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe::asio {
namespace detail {

struct acceptor_impl::takeover_watch {
    std::unique_ptr<npipe::detail::platform::listener::accept_wait> wait;
};

acceptor_impl::acceptor_impl(const ::asio::any_io_executor& ex) : listener(ex), wake(ex) {}

acceptor_impl::~acceptor_impl() {
    close();
}

void acceptor_impl::open(std::string_view name_, pipe_direction direction_, int max_instances_,
                         npipe::transmission_mode mode_, const pipe_options& options_) {
    name = std::string(name_);
    direction = direction_;
    max_instances = max_instances_;
    mode = mode_;
    options = options_;
    if (mode != npipe::transmission_mode::byte && mode != npipe::transmission_mode::message)
        throw pipe_error(npipe::errc::invalid_argument, name,
                         "create server: unknown transmission mode");
    if (max_instances != max_allowed_server_instances &&
        (max_instances < 1 || max_instances > max_server_instances_limit))
        throw pipe_error(npipe::errc::invalid_argument, name,
                         "create server: max_instances must be 1..254 or "
                         "max_allowed_server_instances");
    path = npipe::pipe_path(name);
    std::error_code ec;
    if (max_instances != max_allowed_server_instances) {
        try {
            pool = std::make_shared<instance_pool>(max_instances);
        } catch (const std::system_error& e) {
            throw pipe_error(e.code(), name, "create server: create the instance wake-up event");
        }
        wake.assign(::asio::generic::stream_protocol(AF_UNIX, 0), pool->wake_handle(), ec);
        if (ec)
            throw pipe_error(ec, name, "create server: watch the instance wake-up event");
    }
    // The same listen logic as named_pipe_server (the platform's): never take a live server's
    // name, replace a crashed server's stale socket (ours only), never delete a file that is not
    // a socket, refuse directories another user could tamper with, the file's mode and group
    // from the moment it exists.
    std::string why;
    endpoint = npipe::detail::platform::listen(path, mode, options, ec, why);
    if (ec)
        throw pipe_error(ec, name,
                         "create server at " + path + (why.empty() ? "" : " (" + why + ")"));
    // The reactor waits on the takeover watch, which holds the listening socket: a name taken
    // over wakes a pending accept like a client does (no thread, no polling).
    takeover = std::make_unique<takeover_watch>();
    takeover->wait = endpoint->begin_wait();
    listener.assign(::asio::generic::stream_protocol(AF_UNIX, 0), takeover->wait->native(), ec);
    if (ec) {
        takeover.reset();
        endpoint.reset();
        throw pipe_error(ec, name, "create server at " + path);
    }
}

void acceptor_impl::close() noexcept {
    ++close_generation;
    std::error_code ignored;
    // The reactor lets go of the handles first; the platform's listener then closes its own and
    // removes the socket file (if it is still ours).
    if (listener.is_open())
        listener.release(ignored);
    takeover.reset();  // before the endpoint it watches
    endpoint.reset();
    if (wake.is_open())
        wake.release(ignored);
}

void acceptor_impl::cancel() noexcept {
    ++cancel_generation;
    std::error_code ignored;
    listener.cancel(ignored);
    wake.cancel(ignored);
}

bool acceptor_impl::taken_over() noexcept {
    return takeover && takeover->wait->replaced();
}

std::shared_ptr<npipe::detail::transport> acceptor_impl::try_accept(std::error_code& ec) noexcept {
    using accept_status = npipe::detail::platform::listener::accept_status;
    // Refused clients are taken a few at a time: a flood of them (another user's connect loop)
    // must not keep the event loop from the admitted clients' I/O.
    constexpr int max_refusals_per_call = 16;
    for (int refused = 0;;) {
        accept_status status;
        auto connection = endpoint->accept(options, status, ec);
        // The client gave up before we got to it: take the next one.
        if (status == accept_status::none_queued && !would_block(ec))
            continue;
        if (status != accept_status::accepted)
            return nullptr;
        // current_user_only and accept_peer: a refused client is closed before a byte moves
        // (it reads end of stream) and the next one is taken.
        if (!npipe::detail::admit_peer(*connection, options)) {
            if (++refused == max_refusals_per_call) {
                ec = std::make_error_code(std::errc::interrupted);
                return nullptr;
            }
            continue;
        }
        return connection;
    }
}

}  // namespace detail

}  // namespace npipe::asio
