// What npipe::asio's public classes do the same way on every platform: their accessors, the
// checks before a read or write, the acceptor (its listening, accepting and instance quota,
// making an accepted pipe), the client's constructors. The platforms' I/O is in pipe_impl.cpp,
// acceptor.cpp (acceptor_os.hpp) and connect.cpp (Linux) and windows/ (Windows).
#include "asio/acceptor_os.hpp"
#include "asio/instance_pool.hpp"
#include "core/named_pipe_rules.hpp"
#include "core/pipe_state.hpp"
#include "core/platform.hpp"
#include "core/remote_hook.hpp"
#include "core/transport.hpp"
#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe::asio {
namespace detail {

std::error_code check_read(const pipe_impl* impl) noexcept {
    if (!impl || !impl->is_open())
        return npipe::errc::not_connected;
    if (impl->direction == pipe_direction::out)
        return npipe::errc::wrong_direction;
    return {};
}

std::error_code check_write(const pipe_impl* impl) noexcept {
    if (!impl || !impl->is_open())
        return npipe::errc::not_connected;
    if (impl->direction == pipe_direction::in)
        return npipe::errc::wrong_direction;
    if (impl->write_broken)
        return npipe::errc::broken_pipe;
    return {};
}

struct acceptor_impl::takeover_watch {
    std::unique_ptr<npipe::detail::platform::listener::accept_wait> wait;
};

acceptor_impl::acceptor_impl(const ::asio::any_io_executor& ex)
    : listener(ex), wake(ex), busy_timer(ex) {}

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
        watch(wake, pool->wake_handle(), ec);
        if (ec)
            throw pipe_error(ec, name, "create server: watch the instance wake-up event");
    }
    // The same listen logic as named_pipe_server (the platform's): never take a live server's
    // name; on Linux replace a crashed server's stale socket (ours only), never delete a file
    // that is not a socket, refuse directories another user could tamper with, the file's mode
    // and group from the moment it exists.
    std::string why;
    endpoint = listen_endpoint(path, mode, options, max_instances, ec, why);
    if (ec)
        throw pipe_error(ec, name,
                         "create server at " + path + (why.empty() ? "" : " (" + why + ")"));
    // Asio waits on the takeover watch, which holds the listener's handle: a name taken over
    // wakes a pending accept like a client does (no thread, no polling).
    takeover = std::make_unique<takeover_watch>();
    takeover->wait = endpoint->begin_wait();
    watch(listener, takeover->wait->native(), ec);
    if (ec) {
        takeover.reset();
        endpoint.reset();
        throw pipe_error(ec, name, "create server at " + path);
    }
}

void acceptor_impl::close() noexcept {
    ++close_generation;
    // Asio lets go of the handles first; the platform's listener then closes its own (and on
    // Linux removes the socket file if it is still ours).
    unwatch(listener);
    takeover.reset();  // before the endpoint it watches
    endpoint.reset();
    unwatch(wake);
    busy_timer.cancel();
}

void acceptor_impl::cancel() noexcept {
    ++cancel_generation;
    std::error_code ignored;
    listener.cancel(ignored);
    wake.cancel(ignored);
    busy_timer.cancel();
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
        if (status == accept_status::none_queued) {
            if (!ec)  // Windows: the queue is empty (its event is reset)
                ec = std::make_error_code(std::errc::operation_would_block);
            if (!would_block(ec))
                continue;  // the client gave up before we got to it: take the next one
            return nullptr;
        }
        if (status != accept_status::accepted)
            return nullptr;
        // current_user_only and accept_peer: a refused client is closed before a byte moves
        // (it reads end of stream) and the next one is taken.
        if (!npipe::detail::admit_peer(*connection, options)) {
            connection->close();
            if (++refused == max_refusals_per_call) {
                ec = std::make_error_code(std::errc::interrupted);
                return nullptr;
            }
            continue;
        }
        busy_pause = std::chrono::milliseconds(0);
        return connection;
    }
}

bool acceptor_impl::try_acquire_slot() noexcept {
    return !pool || pool->try_acquire();
}

void acceptor_impl::release_slot() noexcept {
    if (pool)
        pool->release();
}

void acceptor_impl::drain_wake() noexcept {
    if (pool)
        pool->drain();
}

// Wraps an admitted connection as an accepted pipe, holding the slot it took.
std::shared_ptr<pipe_impl> acceptor_impl::make_pipe(
    const ::asio::any_io_executor& ex, std::shared_ptr<npipe::detail::transport> connection,
    std::error_code& ec) {
    std::shared_ptr<pipe_impl> p;
    try {
        p = std::make_shared<pipe_impl>(ex);
        p->name = name;
    } catch (const std::bad_alloc&) {
        connection->close();
        release_slot();
        ec = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
    p->direction = direction;
    p->max_message_size = options.max_message_size;
    p->read_mode = mode;  // a message server starts in message read mode, as on Windows
    p->adopt(std::move(connection), mode, ec);
    if (ec) {
        release_slot();
        return nullptr;
    }
    p->pool = pool;  // the pipe gives the slot back when it is closed or destroyed
    return p;
}

}  // namespace detail

std::size_t pipe_stream::available() const {
    std::error_code ec;
    auto n = available(ec);
    npipe::detail::throw_if(ec, pipe_name(), "available");
    return n;
}

npipe::transmission_mode pipe_stream::transmission_mode() const {
    if (!impl_ || !impl_->transmission_known)
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "transmission mode");
    return impl_->transmission;
}

npipe::transmission_mode pipe_stream::read_mode() const noexcept {
    return impl_ ? impl_->read_mode : npipe::transmission_mode::byte;
}

void pipe_stream::set_read_mode(npipe::transmission_mode mode) {
    if (mode == npipe::transmission_mode::message) {
        if (!impl_ || !impl_->transmission_known)
            npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "set read mode");
        if (impl_->transmission != npipe::transmission_mode::message)
            npipe::detail::throw_if(npipe::errc::not_supported, pipe_name(),
                                    "set message read mode on a byte pipe");
    }
    if (impl_)
        impl_->read_mode = mode;
}

peer_credentials pipe_stream::get_peer_credentials() const {
    if (!is_open())
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "get peer credentials");
    std::error_code ec;
    auto peer = impl_->transport->peer(ec);
    npipe::detail::throw_if(ec, pipe_name(), "get peer credentials");
    return peer;
}

pipe_stream::native_handle_type pipe_stream::native_handle() const noexcept {
    return is_open() ? impl_->transport->native_handle() : npipe::detail::platform::invalid_handle;
}

const std::string& pipe_stream::pipe_name() const noexcept {
    static const std::string none;
    return impl_ ? impl_->name : none;
}

npipe::transmission_mode named_pipe_acceptor::transmission_mode() const noexcept {
    return impl_ ? impl_->mode : npipe::transmission_mode::byte;
}

int named_pipe_acceptor::max_instances() const noexcept {
    return impl_ ? impl_->max_instances : max_allowed_server_instances;
}

const std::string& named_pipe_acceptor::pipe_name() const noexcept {
    static const std::string none;
    return impl_ ? impl_->name : none;
}

const std::string& named_pipe_acceptor::socket_path() const noexcept {
    static const std::string none;
    return impl_ ? impl_->path : none;
}

const std::string& named_pipe_client::socket_path() const noexcept {
    static const std::string none;
    return impl() ? impl()->path : none;
}

named_pipe_client::named_pipe_client(const executor_type& ex, std::string_view name,
                                     pipe_direction direction, pipe_options options)
    : pipe_stream(ex, std::make_shared<detail::pipe_impl>(ex)) {
    auto& p = *impl();
    p.name = std::string(name);
    p.path = npipe::pipe_path(name);
    p.direction = direction;
    p.options = options;
    p.max_message_size = options.max_message_size;
    p.transmission_known = false;
}

named_pipe_client::named_pipe_client(const executor_type& ex, std::string_view server_name,
                                     std::string_view name, pipe_direction direction,
                                     pipe_options options)
    : named_pipe_client(ex, npipe::detail::is_local_server(server_name) ? name : "remote",
                        direction, options) {
    if (npipe::detail::is_local_server(server_name))
        return;
    auto& p = *impl();
    p.path = npipe::detail::remote_path(server_name, name);
    p.name = std::string(name);
}

named_pipe_acceptor::named_pipe_acceptor(const executor_type& ex, std::string_view name,
                                         pipe_direction direction, int max_instances,
                                         npipe::transmission_mode mode, pipe_options options)
    : ex_(ex), impl_(std::make_shared<detail::acceptor_impl>(ex)) {
    impl_->open(name, direction, max_instances, mode, options);
}

}  // namespace npipe::asio
