// npipe/asio/named_pipe_client.hpp: the client end of a named pipe for Asio (the async
// counterpart of npipe::named_pipe_client, .NET's NamedPipeClientStream.ConnectAsync).
#pragma once

#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"
#include "npipe/options.hpp"

namespace npipe::asio {

namespace detail {

/// Remote pipes (npipe::remote registers this when linked): one attempt to open a pipe through
/// a gateway. The attempt runs on the pipe's executor and calls back there exactly once.
struct remote_outcome {
    std::error_code ec;
    int fd = -1;  ///< on success: the connected pipe end, owned by whoever receives it
    bool message = false;
    bool retry = false;  ///< "unknown pipe" or "pipe busy": worth asking again
    /// On success: why the forwarding ended, when it failed (a dead network) rather than the
    /// remote peer closing; becomes pipe_impl::relay_failure.
    std::function<std::error_code()> relay_failure;
};
/// What a waiting async_connect knows of its attempt in flight.
struct remote_wait {
    bool ready = false, abandoned = false;
    remote_outcome outcome;
    std::function<void()> cancel;  ///< abandons the attempt
};
using remote_connect_fn = void (*)(const ::asio::any_io_executor& ex, std::string_view server,
                                   std::string_view name, const pipe_options& options,
                                   std::optional<std::chrono::steady_clock::time_point> deadline,
                                   std::shared_ptr<remote_wait> wait, std::function<void()> wake);
/// Registers the remote connector (npipe::enable_remote_pipes does). Thread-safe.
void set_remote_connector(remote_connect_fn connector) noexcept;

/// Remote clients (connect.cpp): starts an attempt whose completion cancels the connector's
/// timer; false when remote pipes are not linked in (ec set).
bool start_remote_attempt(const std::shared_ptr<pipe_impl>& impl,
                          std::optional<std::chrono::steady_clock::time_point> deadline,
                          const std::shared_ptr<remote_wait>& wait, std::error_code& ec);
/// Remote clients: takes the attempt's connected descriptor into the pipe, or closes it.
void adopt_remote(pipe_impl& impl, remote_outcome& outcome, std::error_code& ec) noexcept;
void discard_remote(remote_outcome& outcome) noexcept;
/// Whether the client reaches its pipe through a gateway (its path is "//host/pipe/name").
inline bool is_remote(const pipe_impl& impl) noexcept {
    return impl.path.size() > 2 && impl.path[0] == '/' && impl.path[1] == '/';
}

/// async_connect: tries to connect; while there is no server (or its backlog is full), waits
/// for the socket's directory to change (inotify) or for a backoff (1 ms doubling to 100 ms),
/// whichever comes first, then tries again, until the deadline.
struct connect_op {
    std::shared_ptr<pipe_impl> impl{};
    std::optional<std::chrono::steady_clock::time_point> deadline{};
    std::chrono::milliseconds backoff{1};
    bool watching = false;
    unsigned close_generation = 0, cancel_generation = 0;
    enum class phase { start, waiting, posted, remote_attempt, remote_backoff } at = phase::start;
    std::error_code result{};
    std::shared_ptr<remote_wait> remote{};
    bool remote_waited = false;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::posted)
            return self.complete(result);
        self.reset_cancellation_state(::asio::enable_total_cancellation());
        if (!impl)  // a moved-from client
            return finish(self, npipe::errc::not_connected);
        if (impl->is_open())
            return finish(self, npipe::errc::already_connected);
        if (!impl->connecting)
            impl->connecting = std::make_unique<connector>(impl->socket.get_executor());
        close_generation = impl->close_generation;
        cancel_generation = impl->cancel_generation;
        if (is_remote(*impl))
            return attempt_remote(self);
        attempt(self);
    }

    // The directory changed or the backoff ran out (group of both waits).
    template <class Self>
    void operator()(Self& self, std::array<std::size_t, 2> order, std::error_code watch_ec,
                    std::error_code) {
        if (stop_requested(self, *impl, close_generation, cancel_generation))
            return finish(self, ::asio::error::operation_aborted);
        if (order[0] == 0 && !watch_ec) {
            impl->drain_watch();  // something appeared: try again at once, from a short backoff
            backoff = std::chrono::milliseconds(1);
        } else {
            backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
        }
        attempt(self);
    }

    // The backoff ran out (no directory watch), or a remote attempt woke us (or its backoff
    // ran out).
    template <class Self>
    void operator()(Self& self, std::error_code) {
        if (at == phase::remote_attempt)
            return remote_answered(self);
        if (stop_requested(self, *impl, close_generation, cancel_generation))
            return finish(self, ::asio::error::operation_aborted);
        if (at == phase::remote_backoff)
            return attempt_remote(self);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
        attempt(self);
    }

    template <class Self>
    void attempt(Self& self) {
        using clock = std::chrono::steady_clock;
        for (;;) {
            std::error_code ec;
            switch (impl->try_connect(ec)) {
                case pipe_impl::attempt::connected:
                    return finish(self, {});
                case pipe_impl::attempt::failed:
                    return finish(self, ec);
                case pipe_impl::attempt::retry:
                    break;
            }
            if (!watching) {
                // Watch first, then try again at once: a server that appeared between the
                // first attempt and the watch would otherwise be seen only after a backoff.
                watching = true;
                impl->start_watch();
                continue;
            }
            auto now = clock::now();
            if (deadline && now >= *deadline)
                return finish(self, npipe::errc::timed_out);
            auto until = now + backoff;
            if (deadline)
                until = std::min(until, *deadline);
            auto& c = *impl->connecting;
            c.timer.expires_at(until);
            at = phase::waiting;
            if (!c.watch.is_open()) {
                c.timer.async_wait(std::move(self));
                return;
            }
            ::asio::experimental::make_parallel_group(
                [&c](auto token) {
                    return c.watch.async_wait(::asio::posix::descriptor_base::wait_read, token);
                },
                [&c](auto token) { return c.timer.async_wait(token); })
                .async_wait(::asio::experimental::wait_for_one(), std::move(self));
            return;
        }
    }

    // Remote pipes: one attempt through the gateway, waited for on the connector's timer
    // (which the attempt cancels when it is done, so close() and cancellation wake us too).
    template <class Self>
    void attempt_remote(Self& self) {
        remote = std::make_shared<remote_wait>();
        std::error_code ec;
        if (!start_remote_attempt(impl, deadline, remote, ec))
            return finish(self, ec);
        auto& timer = impl->connecting->timer;
        timer.expires_at(std::chrono::steady_clock::time_point::max());
        at = phase::remote_attempt;
        timer.async_wait(std::move(self));
    }

    template <class Self>
    void remote_answered(Self& self) {
        using clock = std::chrono::steady_clock;
        auto wait = std::move(remote);
        if (!wait->ready) {  // cancelled, closed or destroyed meanwhile
            wait->abandoned = true;
            if (wait->cancel)
                wait->cancel();
            return finish(self, ::asio::error::operation_aborted);
        }
        if (stop_requested(self, *impl, close_generation, cancel_generation)) {
            discard_remote(wait->outcome);
            return finish(self, ::asio::error::operation_aborted);
        }
        auto& r = wait->outcome;
        std::error_code ec = r.ec;
        if (!ec) {
            adopt_remote(*impl, r, ec);
            return finish(self, ec);
        }
        if (!r.retry)
            return finish(self, ec);
        auto now = clock::now();
        if (deadline && now >= *deadline)  // no wait asked for: the gateway's own answer
            return finish(self, remote_waited ? std::error_code(npipe::errc::timed_out) : ec);
        // As the synchronous client: each attempt is a new TLS connection, so the backoff
        // starts at 20 ms and doubles to 500 ms.
        backoff = remote_waited ? std::min(backoff * 2, std::chrono::milliseconds(500))
                                : std::chrono::milliseconds(20);
        remote_waited = true;
        auto until = now + backoff;
        if (deadline)
            until = std::min(until, *deadline);
        auto& timer = impl->connecting->timer;
        timer.expires_at(until);
        at = phase::remote_backoff;
        timer.async_wait(std::move(self));
    }

    template <class Self>
    void finish(Self& self, std::error_code ec) {
        if (impl)
            impl->stop_watch();
        if (at == phase::start) {
            result = ec;
            at = phase::posted;
            return ::asio::post(std::move(self));
        }
        self.complete(ec);
    }
};

}  // namespace detail

/// A client of a named pipe on this machine, for Asio. The name maps to a socket path as in
/// .NET (npipe::pipe_path()); a server written with .NET, Mono or npipe (synchronous or
/// asynchronous) can be on the other end. Once connected it is a pipe_stream.
class named_pipe_client : public pipe_stream {
  public:
    /// A client of the pipe `name` on `ex`. Throws npipe::pipe_error with errc::invalid_name or
    /// errc::path_too_long for a name that cannot be a pipe. Options as for
    /// npipe::named_pipe_client: current_user_only refuses a server of another user,
    /// max_message_size limits messages on a message pipe, the buffer sizes set SO_RCVBUF /
    /// SO_SNDBUF.
    named_pipe_client(const executor_type& ex, std::string_view name,
                      pipe_direction direction = pipe_direction::in_out, pipe_options options = {});
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, ::asio::execution_context&> named_pipe_client(
        ExecutionContext& context, std::string_view name,
        pipe_direction direction = pipe_direction::in_out, pipe_options options = {})
        : named_pipe_client(context.get_executor(), name, direction, options) {}

    /// A client of the pipe `name` on the machine `server_name`: "." or "localhost" is this
    /// one; any other ("host", "host:port", "[v6]:port") is reached through that machine's
    /// `npipe gateway` over TLS 1.3 with the settings in options.remote, which needs
    /// npipe::remote linked (npipe/remote_options.hpp). The connect, TLS handshake and request
    /// run on `ex`, and so does the forwarding afterwards (a local socket pair whose other end
    /// is relayed to the TLS connection): no thread per connection. Once connected, reads,
    /// writes, end of stream and half-close behave as on a local pipe.
    named_pipe_client(const executor_type& ex, std::string_view server_name, std::string_view name,
                      pipe_direction direction = pipe_direction::in_out, pipe_options options = {});
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, ::asio::execution_context&> named_pipe_client(
        ExecutionContext& context, std::string_view server_name, std::string_view name,
        pipe_direction direction = pipe_direction::in_out, pipe_options options = {})
        : named_pipe_client(context.get_executor(), server_name, name, direction, options) {}

    /// Connects, waiting as long as it takes for a server to appear; completes with
    /// (error_code). The wait watches the socket's directory (inotify) and retries with a
    /// backoff capped at 100 ms, so it never spins a CPU. The pipe's type (byte or message) is
    /// learnt here. Errors: npipe::errc::already_connected, access_denied (current_user_only),
    /// ::asio::error::operation_aborted when cancelled, closed or destroyed meanwhile.
    /// Supports terminal, partial and total cancellation.
    template <class CompletionToken>
    auto async_connect(CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code)>(
            detail::connect_op{impl()}, token, get_executor());
    }

    /// A remote pipe waits the same way for its gateway's "unknown pipe" or "pipe busy" (asking
    /// again after a backoff of 20 ms to 500 ms) and fails at once on its other refusals:
    /// errc::access_denied (not allowed, bad token, refused or untrusted certificate),
    /// std::errc::connection_refused (gateway shutting down or not listening),
    /// errc::protocol_error.
    ///
    /// As above, failing with npipe::errc::timed_out when no server appears within `timeout`.
    /// A remote connect with timeout 0 makes one attempt and fails with the gateway's answer
    /// (std::errc::no_such_file_or_directory, errc::all_instances_busy).
    template <class CompletionToken>
    auto async_connect(std::chrono::milliseconds timeout, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code)>(
            detail::connect_op{impl(), std::chrono::steady_clock::now() + timeout}, token,
            get_executor());
    }

    /// The socket file this client connects to.
    const std::string& socket_path() const noexcept;
};

}  // namespace npipe::asio
