// npipe/asio/detail/connect_op.hpp: the composed operation behind
// npipe::asio::named_pipe_client::async_connect. Not part of the public API. The decisions (the
// connect attempt and its type discovery, current_user_only, the backoff, the remote hook) are
// the core's, shared with the synchronous client; this is only the waiting, done Asio's way.
#pragma once

#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <system_error>

#include "npipe/asio/detail/ops.hpp"
#include "npipe/asio/detail/pipe_impl.hpp"
#include "npipe/detail/connect_backoff.hpp"
#include "npipe/errors.hpp"

namespace npipe::asio::detail {

/// Remote pipes (src/asio/remote_hook.hpp): an attempt through a gateway in flight.
struct remote_wait;

/// Starts an attempt whose completion cancels the connector's timer; null with ec set when
/// remote pipes are not linked in.
std::shared_ptr<remote_wait> start_remote_attempt(
    const std::shared_ptr<pipe_impl>& impl,
    std::optional<std::chrono::steady_clock::time_point> deadline, std::error_code& ec);

/// What an attempt came to, once the connector's timer woke the operation.
enum class remote_answer { abandoned, connected, retry, failed };
/// Takes the attempt's outcome: abandoned when it is not done (the operation was cancelled or
/// the pipe closed: the attempt is cancelled) or when `stop` (its connection is dropped);
/// connected once the pipe holds the connection; retry ("unknown pipe", "pipe busy") or failed
/// with ec set.
remote_answer take_remote_answer(pipe_impl& impl, remote_wait& wait, bool stop,
                                 std::error_code& ec) noexcept;

/// Whether the client reaches its pipe through a gateway (its path is "//host/pipe/name").
bool is_remote(const pipe_impl& impl) noexcept;

/// async_connect: tries to connect; while there is no server (or its backlog is full), waits
/// for the place of the server's endpoint to change (the platform's watch) or for a backoff,
/// whichever comes first, then tries again, until the deadline.
struct connect_op : pipe_op {
    std::optional<std::chrono::steady_clock::time_point> deadline{};
    npipe::detail::connect_backoff backoff = npipe::detail::connect_backoff::local();
    bool watching = false;
    enum class phase { start, waiting, posted, remote_attempt, remote_backoff } at = phase::start;
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
        begin_io();
        if (is_remote(*impl)) {
            backoff = npipe::detail::connect_backoff::remote();
            return attempt_remote(self);
        }
        attempt(self);
    }

    // The directory changed or the backoff ran out (group of both waits).
    template <class Self>
    void operator()(Self& self, std::array<std::size_t, 2> order, std::error_code watch_ec,
                    std::error_code) {
        if (stopped(self))
            return finish(self, ::asio::error::operation_aborted);
        if (order[0] == 0 && !watch_ec) {
            impl->drain_watch();  // something appeared: try again at once, from a short backoff
            backoff.changed();
        } else {
            backoff.waited();
        }
        attempt(self);
    }

    // The backoff ran out (no directory watch), or a remote attempt woke us (or its backoff
    // ran out).
    template <class Self>
    void operator()(Self& self, std::error_code) {
        if (at == phase::remote_attempt)
            return remote_answered(self);
        if (stopped(self))
            return finish(self, ::asio::error::operation_aborted);
        if (at == phase::remote_backoff)
            return attempt_remote(self);
        backoff.waited();
        attempt(self);
    }

    template <class Self>
    void attempt(Self& self) {
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
            if (deadline && std::chrono::steady_clock::now() >= *deadline)
                return finish(self, npipe::errc::timed_out);
            auto& c = *impl->connecting;
            c.timer.expires_at(backoff.next_until(deadline));
            at = phase::waiting;
            if (!c.watch.is_open()) {
                c.timer.async_wait(std::move(self));
                return;
            }
            ::asio::experimental::make_parallel_group(
                [&c](auto token) {
                    return c.watch.async_wait(::asio::socket_base::wait_read, token);
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
        std::error_code ec;
        remote = start_remote_attempt(impl, deadline, ec);
        if (!remote)
            return finish(self, ec);
        auto& timer = impl->connecting->timer;
        timer.expires_at(std::chrono::steady_clock::time_point::max());
        at = phase::remote_attempt;
        timer.async_wait(std::move(self));
    }

    template <class Self>
    void remote_answered(Self& self) {
        auto wait = std::move(remote);
        std::error_code ec;
        bool stop = stopped(self);
        switch (take_remote_answer(*impl, *wait, stop, ec)) {
            case remote_answer::abandoned:
                return finish(self, ::asio::error::operation_aborted);
            case remote_answer::connected:
            case remote_answer::failed:
                return finish(self, ec);
            case remote_answer::retry:
                break;
        }
        if (deadline && std::chrono::steady_clock::now() >= *deadline)
            // No wait asked for: the gateway's own answer.
            return finish(self, remote_waited ? std::error_code(npipe::errc::timed_out) : ec);
        if (remote_waited)
            backoff.waited();
        remote_waited = true;
        auto& timer = impl->connecting->timer;
        timer.expires_at(backoff.next_until(deadline));
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

}  // namespace npipe::asio::detail
