#include "npipe/named_pipe_client.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>

#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "core/pipe_state.hpp"
#include "platform/posix/local_socket.hpp"
#include "remote/connector.hpp"

namespace npipe {
namespace detail {

struct client_state : pipe_state {
    client_state(std::string name, pipe_direction direction, const pipe_options& options_)
        : pipe_state(std::move(name), direction, fd_kind::socket), options(options_) {
        transmission_known = false;  // learnt at connect
        tune(options);
    }
    pipe_options options;
    std::string path;
    std::string server;  ///< another machine's name: the pipe is reached through its gateway
    std::shared_ptr<remote_link> link;
    std::string why;  ///< remote connects: what went wrong, for the exception's message

    ~client_state() override {
        // The relay must see our end go before it can finish (pipe_state closes it later).
        if (link && conn)
            ::shutdown(conn.get(), SHUT_RDWR);
        on_close();
    }

    std::error_code end_of_stream_error() const noexcept override {
        return link ? link->failure() : std::error_code();
    }
    void on_close() noexcept override {
        if (link)
            link->close();
    }
};

namespace {
std::atomic<remote_connect_fn> registered_connector{nullptr};
}

void set_remote_connector(remote_connect_fn connector) noexcept {
    registered_connector.store(connector);
}

remote_connect_fn remote_connector() noexcept {
    return registered_connector.load();
}

}  // namespace detail

namespace {

std::shared_ptr<detail::client_state> make_client(std::string_view server, std::string_view name,
                                                  pipe_direction direction,
                                                  const pipe_options& options) {
    if (!detail::is_local_server(server)) {
        if (!detail::remote_connector())
            throw pipe_error(errc::not_supported, name,
                             "connect to server '" + std::string(server) +
                                 "': remote pipes need npipe::remote (link it and call "
                                 "npipe::enable_remote_pipes())");
        if (name.empty() || name.find('/') != std::string_view::npos || name.size() > 255)
            throw pipe_error(errc::invalid_name, name, "open a remote pipe");
        auto state = std::make_shared<detail::client_state>(std::string(name), direction, options);
        state->server = std::string(server);
        state->path = "//" + state->server + "/pipe/" + std::string(name);
        return state;
    }
    auto state = std::make_shared<detail::client_state>(std::string(name), direction, options);
    state->path = pipe_path(name);
    return state;
}

}  // namespace

named_pipe_client::named_pipe_client(std::string_view name) : named_pipe_client(".", name) {}

named_pipe_client::named_pipe_client(std::string_view server_name, std::string_view name,
                                     pipe_direction direction, pipe_options options)
    : pipe_stream(make_client(server_name, name, direction, options)) {}

void named_pipe_client::connect() {
    connect(std::chrono::milliseconds(-1));
}

void named_pipe_client::connect(std::error_code& ec) noexcept {
    connect(std::chrono::milliseconds(-1), ec);
}

void named_pipe_client::connect(std::chrono::milliseconds timeout) {
    std::error_code ec;
    connect(timeout, ec);
    const auto& why = static_cast<const detail::client_state&>(state()).why;
    if (ec == errc::timed_out)
        detail::throw_if(ec, pipe_name(),
                         "connect: no server at " + socket_path() + " within " +
                             std::to_string(timeout.count()) + " ms" +
                             (why.empty() ? "" : " (last: ") + why + (why.empty() ? "" : ")"));
    detail::throw_if(ec, pipe_name(),
                     "connect to " + socket_path() + (why.empty() ? "" : ": ") + why);
}

void named_pipe_client::connect(std::chrono::milliseconds timeout, std::error_code& ec) noexcept {
    using clock = std::chrono::steady_clock;
    auto keep = shared_state();
    auto& s = static_cast<detail::client_state&>(*keep);
    if (s.conn) {
        ec = errc::already_connected;
        return;
    }
    std::optional<clock::time_point> deadline;
    if (timeout.count() >= 0)
        deadline = clock::now() + timeout;
    detail::unique_fd watch;
    bool watching = false;
    auto backoff = std::chrono::milliseconds(1);
    detail::unique_fd fd;
    bool message = false;
    if (!s.server.empty()) [[unlikely]] {
        // Each attempt is a new TLS connection, so the backoff starts where a local wait's
        // ends; the gateway sees at most a few requests a second from a waiting client.
        backoff = std::chrono::milliseconds(20);
        bool waited = false;
        for (;;) {
            s.why.clear();
            auto remote = detail::remote_connector()(s.server, s.name, s.direction, s.options,
                                                     deadline, ec, s.why);
            if (!ec) {
                fd = std::move(remote.fd);
                message = remote.message;
                s.link = std::move(remote.link);
                break;
            }
            if (!remote.retry)
                return;
            auto now = clock::now();
            if (deadline && now >= *deadline) {
                // No wait asked for: the gateway's own answer ("no such pipe", "busy").
                if (waited)
                    ec = errc::timed_out;
                return;
            }
            waited = true;
            auto until = now + backoff;
            if (deadline)
                until = std::min(until, *deadline);
            if (s.sleep_until(until)) {
                ec = errc::operation_aborted;
                return;
            }
            if (deadline && clock::now() >= *deadline) {
                ec = errc::timed_out;
                return;
            }
            backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
        }
    }
    while (!fd) {
        if (s.closed) {
            ec = errc::operation_aborted;
            return;
        }
        fd = detail::connect_once(s.path, ec);
        message = false;
        if (ec == std::error_code(EPROTOTYPE, std::system_category())) {
            // The listener is not SOCK_STREAM: a message-mode pipe. Nothing was sent, so
            // discovery costs a byte-mode server nothing.
            fd = detail::connect_once(s.path, ec, SOCK_SEQPACKET);
            message = true;
        }
        if (!ec)
            break;
        if (!detail::worth_retrying(ec)) {
            if (ec.category() == std::system_category())
                ec = detail::errno_code(ec.value());
            return;
        }
        if (!watching) {
            // Watch first, then try again at once: a server that appeared between the first
            // attempt and the watch would otherwise be noticed only after the backoff.
            watch = detail::watch_socket_directory(s.path);
            watching = true;
            continue;
        }
        auto now = clock::now();
        if (deadline && now >= *deadline) {
            ec = errc::timed_out;
            return;
        }
        auto until = now + backoff;
        if (deadline)
            until = std::min(until, *deadline);
        ec = s.wait_readable(watch.get(), until);
        if (ec == errc::operation_aborted)
            return;
        if (!ec) {
            detail::drain_events(
                watch.get());  // something changed in the directory: try again right away
            backoff = std::chrono::milliseconds(1);
        } else {
            backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
        }
    }
    if (s.options.current_user_only && s.server.empty()) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            cred.uid != ::geteuid()) {
            ec = errc::access_denied;
            return;
        }
    }
    detail::set_buffer_sizes(fd.get(), s.options.in_buffer_size, s.options.out_buffer_size);
    if (s.direction == pipe_direction::in)
        ::shutdown(fd.get(), SHUT_WR);
    if (s.direction == pipe_direction::out)
        ::shutdown(fd.get(), SHUT_RD);
    s.conn = std::move(fd);
    s.broken = false;
    s.eof = false;
    s.transmission = message ? transmission_mode::message : transmission_mode::byte;
    s.read_mode = transmission_mode::byte;  // as on Windows: the client opts in to messages
    s.transmission_known = true;
    if (message) {
        s.attach_message_channel(s.options.max_message_size, ec);
        if (ec)
            s.drop_connection();
        return;
    }
    ec.clear();
}

const std::string& named_pipe_client::socket_path() const noexcept {
    return static_cast<const detail::client_state&>(state()).path;
}

}  // namespace npipe
