#include "npipe/named_pipe_client.hpp"

#include <algorithm>

#include "core/named_pipe_rules.hpp"
#include "core/pipe_state.hpp"
#include "core/remote_hook.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe {
namespace detail {

struct client_state : pipe_state {
    client_state(std::string name, pipe_direction direction, const pipe_options& options_)
        : pipe_state(std::move(name), direction), options(options_) {
        transmission_known = false;  // learnt at connect
        tune(options);
    }
    pipe_options options;
    std::string path;
    std::string server;  ///< another machine's name: the pipe is reached through its gateway
    std::string why;     ///< remote connects: what went wrong, for the exception's message
};

}  // namespace detail

namespace {

using clock = std::chrono::steady_clock;
using deadline_t = std::optional<clock::time_point>;

std::shared_ptr<detail::client_state> make_client(std::string_view server, std::string_view name,
                                                  pipe_direction direction,
                                                  const pipe_options& options) {
    if (!detail::is_local_server(server)) {
        if (!detail::remote_connector())
            throw pipe_error(errc::not_supported, name,
                             "connect to server '" + std::string(server) +
                                 "': remote pipes need npipe::remote (link it and call "
                                 "npipe::enable_remote_pipes())");
        auto path = detail::remote_path(server, name);
        auto state = std::make_shared<detail::client_state>(std::string(name), direction, options);
        state->server = std::string(server);
        state->path = std::move(path);
        return state;
    }
    auto state = std::make_shared<detail::client_state>(std::string(name), direction, options);
    state->path = pipe_path(name);
    return state;
}

// A remote pipe: asks the gateway, again after a backoff while it answers "unknown pipe" or
// "pipe busy" and time is left.
std::shared_ptr<detail::transport> connect_remote(detail::client_state& s, deadline_t deadline,
                                                  bool& message, std::error_code& ec) {
    auto backoff = detail::connect_backoff::remote();
    bool waited = false;
    for (;;) {
        s.why.clear();
        auto remote = detail::remote_connector()(s.server, s.name, s.direction, s.options, deadline,
                                                 ec, s.why);
        if (!ec) {
            message = remote.message;
            return std::move(remote.connection);
        }
        if (!remote.retry)
            return nullptr;
        if (deadline && clock::now() >= *deadline) {
            // No wait asked for: the gateway's own answer ("no such pipe", "busy").
            if (waited)
                ec = errc::timed_out;
            return nullptr;
        }
        waited = true;
        if (s.sleep_until(backoff.next_until(deadline))) {
            ec = errc::operation_aborted;
            return nullptr;
        }
        if (deadline && clock::now() >= *deadline) {
            ec = errc::timed_out;
            return nullptr;
        }
        backoff.waited();
    }
}

// A local pipe: tries; while there is no server (or its backlog is full), sleeps until the
// socket's directory changes or the backoff ends, and tries again, until the deadline.
std::shared_ptr<detail::transport> connect_local(detail::client_state& s, deadline_t deadline,
                                                 bool& message, std::error_code& ec) {
    std::unique_ptr<detail::platform::endpoint_watch> watch;
    bool watching = false;
    auto backoff = detail::connect_backoff::local();
    for (;;) {
        if (s.closed) {
            ec = errc::operation_aborted;
            return nullptr;
        }
        detail::platform::connect_status status;
        auto t = detail::connect_local(s.path, s.options, message, status, ec);
        if (status == detail::platform::connect_status::connected)
            return t;
        if (status != detail::platform::connect_status::retry)
            return nullptr;
        if (!watching) {
            // Watch first, then try again at once: a server that appeared between the first
            // attempt and the watch would otherwise be noticed only after the backoff.
            watch = detail::platform::watch_endpoint(s.path);
            watching = true;
            continue;
        }
        if (deadline && clock::now() >= *deadline) {
            ec = errc::timed_out;
            return nullptr;
        }
        ec = s.wait_readable(watch ? watch->native() : detail::platform::invalid_handle,
                             backoff.next_until(deadline));
        if (ec == errc::operation_aborted)
            return nullptr;
        if (!ec) {
            watch->drain();  // something changed in the directory: try again right away
            backoff.changed();
        } else {
            backoff.waited();
        }
    }
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
    auto keep = shared_state();
    auto& s = static_cast<detail::client_state&>(*keep);
    if (s.conn) {
        ec = errc::already_connected;
        return;
    }
    deadline_t deadline;
    if (timeout.count() >= 0)
        deadline = clock::now() + timeout;
    bool message = false;
    std::shared_ptr<detail::transport> connection;
    try {
        connection = s.server.empty() ? connect_local(s, deadline, message, ec)
                                      : connect_remote(s, deadline, message, ec);
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
    if (!connection)
        return;
    s.transmission = message ? transmission_mode::message : transmission_mode::byte;
    s.read_mode = transmission_mode::byte;  // as on Windows: the client opts in to messages
    s.transmission_known = true;
    s.attach(std::move(connection), ec);
}

const std::string& named_pipe_client::socket_path() const noexcept {
    return static_cast<const detail::client_state&>(state()).path;
}

}  // namespace npipe
