#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "pipe_state.hpp"
#include "posix/local_socket.hpp"
#include "posix/unique_fd.hpp"

namespace npipe::asio {
namespace detail {

namespace {

// Errors that mean "no server (yet)" or "server busy": .NET retries exactly these, as does
// npipe::named_pipe_client::connect.
bool worth_retrying(const std::error_code& ec) {
    if (ec.category() != std::system_category())
        return false;
    int e = ec.value();
    return e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == EADDRINUSE;
}

}  // namespace

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
        if (worth_retrying(ec))
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
    npipe::detail::set_buffer_sizes(fd.get(), options.in_buffer_size, options.out_buffer_size);
    if (direction == pipe_direction::in)
        ::shutdown(fd.get(), SHUT_WR);
    if (direction == pipe_direction::out)
        ::shutdown(fd.get(), SHUT_RD);
    adopt(fd.release(),
          message ? npipe::transmission_mode::message : npipe::transmission_mode::byte, ec);
    if (ec)
        return attempt::failed;
    read_mode = npipe::transmission_mode::byte;  // as on Windows: the client opts in to messages
    return attempt::connected;
}

bool pipe_impl::start_watch() noexcept {
    npipe::detail::unique_fd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!fd)
        return false;
    auto slash = path.rfind('/');
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    // The directory may not exist yet: the backoff alone paces the retries then.
    if (::inotify_add_watch(fd.get(), dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0)
        return false;
    std::error_code ec;
    connecting->watch.assign(fd.get(), ec);
    if (ec)
        return false;
    fd.release();
    return true;
}

void pipe_impl::drain_watch() noexcept {
    if (!connecting || !connecting->watch.is_open())
        return;
    char buffer[4096];
    while (::read(connecting->watch.native_handle(), buffer, sizeof buffer) > 0) {
    }
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

const std::string& named_pipe_client::socket_path() const noexcept {
    static const std::string none;
    return impl() ? impl()->path : none;
}

}  // namespace npipe::asio
