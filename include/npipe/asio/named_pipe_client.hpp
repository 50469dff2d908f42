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
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"
#include "npipe/options.hpp"

namespace npipe::asio {

namespace detail {

/// async_connect: tries to connect; while there is no server (or its backlog is full), waits
/// for the socket's directory to change (inotify) or for a backoff (1 ms doubling to 100 ms),
/// whichever comes first, then tries again, until the deadline.
struct connect_op {
    std::shared_ptr<pipe_impl> impl{};
    std::optional<std::chrono::steady_clock::time_point> deadline{};
    std::chrono::milliseconds backoff{1};
    bool watching = false;
    unsigned close_generation = 0, cancel_generation = 0;
    enum class phase { start, waiting, posted } at = phase::start;
    std::error_code result{};

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

    // The backoff ran out (no directory watch).
    template <class Self>
    void operator()(Self& self, std::error_code) {
        if (stop_requested(self, *impl, close_generation, cancel_generation))
            return finish(self, ::asio::error::operation_aborted);
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

    /// As above, failing with npipe::errc::timed_out when no server appears within `timeout`.
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
