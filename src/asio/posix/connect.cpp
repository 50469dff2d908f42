#include <atomic>
#include <utility>

#include "asio/remote_hook.hpp"
#include "core/named_pipe_rules.hpp"
#include "core/platform.hpp"
#include "core/remote_hook.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe::asio {
namespace detail {

namespace {

std::atomic<remote_connect_fn> registered_remote{nullptr};

// The last step of a connect, local or remote: the pipe takes the connection.
void take_connection(pipe_impl& impl, std::shared_ptr<npipe::detail::transport> connection,
                     bool message, std::error_code& ec) noexcept {
    impl.adopt(std::move(connection),
               message ? npipe::transmission_mode::message : npipe::transmission_mode::byte, ec);
    if (!ec)
        impl.read_mode = npipe::transmission_mode::byte;  // as on Windows: clients opt in
}

}  // namespace

void set_remote_connector(remote_connect_fn connector) noexcept {
    registered_remote.store(connector);
}

bool is_remote(const pipe_impl& impl) noexcept {
    return npipe::detail::is_remote_path(impl.path);
}

std::shared_ptr<remote_wait> start_remote_attempt(
    const std::shared_ptr<pipe_impl>& impl,
    std::optional<std::chrono::steady_clock::time_point> deadline, std::error_code& ec) {
    auto connector = registered_remote.load();
    if (!connector) {
        ec = npipe::errc::not_supported;  // npipe::remote is not linked in
        return nullptr;
    }
    auto wait = std::make_shared<remote_wait>();
    std::weak_ptr<pipe_impl> pipe = impl;
    connector(impl->socket.get_executor(), npipe::detail::remote_server(impl->path), impl->name,
              impl->options, deadline, wait, [pipe] {
                  if (auto p = pipe.lock(); p && p->connecting)
                      p->connecting->timer.cancel();
              });
    return wait;
}

remote_answer take_remote_answer(pipe_impl& impl, remote_wait& wait, bool stop,
                                 std::error_code& ec) noexcept {
    if (!wait.ready) {  // cancelled, closed or destroyed meanwhile
        wait.abandoned = true;
        if (wait.cancel)
            wait.cancel();
        return remote_answer::abandoned;
    }
    auto& r = wait.outcome;
    if (stop) {
        if (r.connection)
            r.connection->close();
        return remote_answer::abandoned;
    }
    ec = r.ec;
    if (ec)
        return r.retry ? remote_answer::retry : remote_answer::failed;
    take_connection(impl, std::move(r.connection), r.message, ec);
    return ec ? remote_answer::failed : remote_answer::connected;
}

pipe_impl::attempt pipe_impl::try_connect(std::error_code& ec) noexcept {
    bool message = false;
    npipe::detail::platform::connect_status status;
    auto connection = npipe::detail::connect_local(path, options, message, status, ec);
    if (status == npipe::detail::platform::connect_status::retry)
        return attempt::retry;
    if (!connection)
        return attempt::failed;
    take_connection(*this, std::move(connection), message, ec);
    return ec ? attempt::failed : attempt::connected;
}

bool pipe_impl::start_watch() noexcept {
    auto& c = *connecting;
    c.endpoint_watch = npipe::detail::platform::watch_endpoint(path);
    if (!c.endpoint_watch)
        return false;
    std::error_code ec;
    c.watch.assign(::asio::generic::stream_protocol(AF_UNIX, 0), c.endpoint_watch->native(), ec);
    if (ec) {
        c.endpoint_watch.reset();
        return false;
    }
    return true;
}

void pipe_impl::drain_watch() noexcept {
    if (connecting && connecting->endpoint_watch)
        connecting->endpoint_watch->drain();
}

void pipe_impl::stop_watch() noexcept {
    if (connecting) {
        std::error_code ignored;
        // The reactor lets go first; the platform's watch then closes its handle.
        if (connecting->watch.is_open())
            connecting->watch.release(ignored);
        connecting->endpoint_watch.reset();
    }
}

}  // namespace detail

}  // namespace npipe::asio
