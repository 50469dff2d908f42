// npipe::asio's acceptor on Windows (include/npipe/asio/detail/windows/acceptor_impl.hpp): the
// synchronous server's listener, waited on through Asio.
#include <windows.h>

#include "asio/instance_pool.hpp"
#include "core/named_pipe_rules.hpp"
#include "core/platform.hpp"
#include "core/transport.hpp"
#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe::asio {
namespace detail {

namespace {

// An object_handle owns what it waits on: it gets its own handle to an event the platform
// keeps.
void watch_event(waitable_handle& waiter, HANDLE event, std::error_code& ec) {
    HANDLE own = ::GetCurrentProcess(), copy = nullptr;
    if (!::DuplicateHandle(own, event, own, &copy, SYNCHRONIZE, FALSE, 0)) {
        ec = npipe::detail::win::last_error();
        return;
    }
    waiter.assign(copy, ec);
    if (ec)
        ::CloseHandle(copy);
}

}  // namespace

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
    options.shared_memory = false;  // no shared memory on Windows
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
        watch_event(wake, pool->wake_handle(), ec);
        if (ec)
            throw pipe_error(ec, name, "create server: watch the instance wake-up event");
    }
    std::string why;
    endpoint = npipe::detail::platform::listen(path, mode, options, ec, why);
    if (ec)
        throw pipe_error(ec, name,
                         "create server at " + path + (why.empty() ? "" : " (" + why + ")"));
    watch_event(listener, endpoint->native(), ec);
    if (ec) {
        endpoint.reset();
        throw pipe_error(ec, name, "create server at " + path);
    }
}

void acceptor_impl::close() noexcept {
    ++close_generation;
    std::error_code ignored;
    listener.close(ignored);  // pending waits complete with operation_aborted
    endpoint.reset();
    wake.close(ignored);
}

void acceptor_impl::cancel() noexcept {
    ++cancel_generation;
    std::error_code ignored;
    listener.cancel(ignored);
    wake.cancel(ignored);
}

std::shared_ptr<npipe::detail::transport> acceptor_impl::try_accept(std::error_code& ec) noexcept {
    using accept_status = npipe::detail::platform::listener::accept_status;
    // Refused clients are taken a few at a time: a flood of them must not keep the event loop
    // from the admitted clients' I/O.
    constexpr int max_refusals_per_call = 16;
    for (int refused = 0;;) {
        accept_status status;
        auto connection = endpoint->accept(options, status, ec);
        if (status == accept_status::none_queued) {
            // The queue is empty (its event is reset): wait for it again.
            ec = std::make_error_code(std::errc::operation_would_block);
            return nullptr;
        }
        if (status != accept_status::accepted)
            return nullptr;
        if (!npipe::detail::admit_peer(*connection, options)) {
            connection->close();
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
