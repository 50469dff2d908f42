#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "core/pipe_state.hpp"
#include "platform/posix/local_socket.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::asio {
namespace detail {

namespace {

// The last steps of a connect, local or remote: buffer sizes, direction, then the pipe owns
// the socket.
void take_connection(pipe_impl& impl, npipe::detail::unique_fd fd, bool message,
                     std::error_code& ec) noexcept {
    npipe::detail::set_buffer_sizes(fd.get(), impl.options.in_buffer_size,
                                    impl.options.out_buffer_size);
    if (impl.direction == pipe_direction::in)
        ::shutdown(fd.get(), SHUT_WR);
    if (impl.direction == pipe_direction::out)
        ::shutdown(fd.get(), SHUT_RD);
    impl.adopt(fd.release(),
               message ? npipe::transmission_mode::message : npipe::transmission_mode::byte, ec);
    if (!ec)
        impl.read_mode = npipe::transmission_mode::byte;  // as on Windows: clients opt in
}

std::atomic<remote_connect_fn> registered_remote{nullptr};

}  // namespace

void set_remote_connector(remote_connect_fn connector) noexcept {
    registered_remote.store(connector);
}

bool start_remote_attempt(const std::shared_ptr<pipe_impl>& impl,
                          std::optional<std::chrono::steady_clock::time_point> deadline,
                          const std::shared_ptr<remote_wait>& wait, std::error_code& ec) {
    auto connector = registered_remote.load();
    if (!connector) {
        ec = npipe::errc::not_supported;  // npipe::remote is not linked in
        return false;
    }
    auto slash = impl->path.find('/', 2);
    std::string_view server = std::string_view(impl->path).substr(2, slash - 2);
    std::weak_ptr<pipe_impl> pipe = impl;
    connector(impl->socket.get_executor(), server, impl->name, impl->options, deadline, wait,
              [pipe] {
                  if (auto p = pipe.lock(); p && p->connecting)
                      p->connecting->timer.cancel();
              });
    return true;
}

void adopt_remote(pipe_impl& impl, remote_outcome& outcome, std::error_code& ec) noexcept {
    npipe::detail::unique_fd fd(std::exchange(outcome.fd, -1));
    take_connection(impl, std::move(fd), outcome.message, ec);
    if (!ec)
        impl.relay_failure = std::move(outcome.relay_failure);
}

void discard_remote(remote_outcome& outcome) noexcept {
    npipe::detail::unique_fd(std::exchange(outcome.fd, -1));
}

pipe_impl::attempt pipe_impl::try_connect(std::error_code& ec) noexcept {
    auto fd = npipe::detail::connect_once(path, ec);
    bool message = false;
    if (ec == std::error_code(EPROTOTYPE, std::system_category())) {
        // The listener is not SOCK_STREAM: a message-mode pipe. Nothing was sent, so the
        // discovery costs a byte-mode server nothing.
        fd = npipe::detail::connect_once(path, ec, SOCK_SEQPACKET);
        message = true;
    }
    if (ec) {
        if (npipe::detail::worth_retrying(ec))
            return attempt::retry;
        if (ec.category() == std::system_category())
            ec = npipe::detail::errno_code(ec.value());
        return attempt::failed;
    }
    if (options.current_user_only) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            cred.uid != ::geteuid()) {
            ec = npipe::errc::access_denied;
            return attempt::failed;
        }
    }
    take_connection(*this, std::move(fd), message, ec);
    return ec ? attempt::failed : attempt::connected;
}

bool pipe_impl::start_watch() noexcept {
    auto fd = npipe::detail::watch_socket_directory(path);
    if (!fd)
        return false;
    std::error_code ec;
    connecting->watch.assign(fd.get(), ec);
    if (ec)
        return false;
    fd.release();
    return true;
}

void pipe_impl::drain_watch() noexcept {
    if (connecting && connecting->watch.is_open())
        npipe::detail::drain_events(connecting->watch.native_handle());
}

void pipe_impl::stop_watch() noexcept {
    if (connecting) {
        std::error_code ignored;
        connecting->watch.close(ignored);
    }
}

}  // namespace detail

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
    if (name.empty() || name.find('/') != std::string_view::npos || name.size() > 255)
        throw npipe::pipe_error(npipe::errc::invalid_name, name, "open a remote pipe");
    auto& p = *impl();
    p.name = std::string(name);
    p.path = "//" + std::string(server_name) + "/pipe/" + std::string(name);
}

const std::string& named_pipe_client::socket_path() const noexcept {
    static const std::string none;
    return impl() ? impl()->path : none;
}

}  // namespace npipe::asio
