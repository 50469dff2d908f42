// npipe/asio/named_pipe_acceptor.hpp: the server side of a named pipe for Asio: listens at a name
// and accepts any number of clients, each its own pipe_stream (the async counterpart of
// npipe::named_pipe_server, .NET's WaitForConnectionAsync).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "npipe/asio/detail/acceptor_impl.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/asio/timeout.hpp"
#include "npipe/errors.hpp"
#include "npipe/options.hpp"

namespace npipe::asio {

namespace detail {

/// async_accept: takes a max_instances slot (waiting for one to be given back when all are in
/// use: the clients meanwhile wait in the listening socket's backlog on Linux, in their connect
/// on Windows), then waits for a client and accepts it.
template <class PipeExecutor, class Pipe>
struct accept_op {
    std::shared_ptr<acceptor_impl> impl{};
    PipeExecutor pipe_executor{};
    bool holding_slot = false;
    unsigned close_generation = 0, cancel_generation = 0;
    enum class phase {
        start,
        waiting_slot,
        waiting_client,
        waiting_instance,
        posted
    } at = phase::start;
    std::error_code result{};
    std::shared_ptr<pipe_impl> accepted{};

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::posted)
            return self.complete(result, Pipe(pipe_executor, std::move(accepted)));
        self.reset_cancellation_state(::asio::enable_total_cancellation());
        if (!impl || !impl->listener.is_open())
            return finish(self, ::asio::error::bad_descriptor);
        close_generation = impl->close_generation;
        cancel_generation = impl->cancel_generation;
        proceed(self);
    }

    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        bool stop = self.get_cancellation_state().cancelled() != ::asio::cancellation_type::none ||
                    impl->close_generation != close_generation ||
                    impl->cancel_generation != cancel_generation;
        // Another accept re-armed the pause timer they share before it completed this wait.
        if (at == phase::waiting_instance && ec == ::asio::error::operation_aborted && !stop)
            ec.clear();
        if (!ec && stop)
            ec = ::asio::error::operation_aborted;
        if (ec)
            return finish(self, ec);
        if (at == phase::waiting_slot)
            impl->drain_wake();
        proceed(self);
    }

    template <class Self>
    void proceed(Self& self) {
        // Waiting on for clients that can no longer arrive would hang the server: say so. A
        // wake by the takeover watch alone finds no client and waits again below.
        if (impl->taken_over())
            return finish(self, npipe::errc::name_taken_over);
        if (!holding_slot) {
            if (!impl->try_acquire_slot()) {
                at = phase::waiting_slot;
                impl->wake.async_wait(::asio::socket_base::wait_read, std::move(self));
                return;
            }
            holding_slot = true;
        }
        std::error_code ec;
        auto connection = impl->try_accept(ec);
        if (!connection && ec == std::errc::interrupted) {
            // Many refused clients in a row: go on after the handlers already queued have run.
            at = phase::waiting_client;
            auto ex = impl->listener.get_executor();  // before `self` (and `impl`) move
            return ::asio::post(ex, [s = std::move(self)]() mutable { s(std::error_code{}); });
        }
        if (!connection && would_block(ec)) {
            at = phase::waiting_client;
            impl->listener.async_wait(::asio::socket_base::wait_read, std::move(self));
            return;
        }
        if (!connection && ec == npipe::errc::all_instances_busy) {
            // Windows: other processes' servers of the name hold every instance the system
            // allows (our slot is free, so ours do not). Look again after a pause, as
            // named_pipe_server's accept does.
            at = phase::waiting_instance;
            return impl->async_pause(std::move(self));
        }
        if (!connection)
            return finish(self, ec);
        accepted = impl->make_pipe(pipe_executor, std::move(connection), ec);
        holding_slot = false;  // the pipe holds it now (make_pipe gives it back on failure)
        finish(self, ec);
    }

    template <class Self>
    void finish(Self& self, std::error_code ec) {
        if (holding_slot) {
            impl->release_slot();
            holding_slot = false;
        }
        if (at == phase::start) {
            result = ec;
            at = phase::posted;
            return ::asio::post(std::move(self));
        }
        self.complete(ec, Pipe(pipe_executor, std::move(accepted)));
    }
};

}  // namespace detail

/// Listens at a pipe name and accepts clients asynchronously, each into its own pipe_stream.
/// The constructor creates the listening socket, so clients can connect (and queue) from then
/// on. As with npipe::named_pipe_server, a live server's name is never taken over (in this
/// process or another: errc::name_in_use), a stale socket file left by a crashed server is
/// replaced, and a file that is not a socket is never deleted (errc::not_a_socket).
///
/// max_instances is the number of accepted pipes that may be open at once: while that many
/// are, async_accept waits until an accepted pipe is closed or destroyed, and new clients wait:
/// on Linux in the listening socket's backlog (their connect has succeeded, as with .NET on
/// Linux); on Windows in their connect (the pipe's instances are created with max_instances,
/// so Windows itself counts them, across processes: clients see ERROR_PIPE_BUSY and retry
/// until their timeout, and another server of the name may not exceed the count either).
/// Clients are never dropped.
///
/// Not safe for concurrent use (as every Asio I/O object); several accepts may be pending at
/// once. Destroying or closing the acceptor completes pending accepts with
/// ::asio::error::operation_aborted and removes the socket file; accepted pipes live on.
class named_pipe_acceptor {
  public:
    using executor_type = ::asio::any_io_executor;

    /// Listens at `name` on `ex`. max_instances: 1..254, or max_allowed_server_instances (the
    /// default: an acceptor exists to serve many clients, unlike named_pipe_server whose
    /// default of 1 follows .NET). transmission_mode::message makes a message-mode pipe
    /// (docs/protocol.md). options as for named_pipe_server: current_user_only, socket_mode,
    /// socket_group and accept_peer (a refused client is closed before a byte moves and the
    /// accept goes on), the buffer sizes of accepted pipes, max_message_size.
    /// Throws npipe::pipe_error (invalid_name, path_too_long, name_in_use, not_a_socket,
    /// access_denied, invalid_argument).
    named_pipe_acceptor(const executor_type& ex, std::string_view name,
                        pipe_direction direction = pipe_direction::in_out,
                        int max_instances = max_allowed_server_instances,
                        npipe::transmission_mode mode = npipe::transmission_mode::byte,
                        pipe_options options = {});
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, ::asio::execution_context&>
    named_pipe_acceptor(ExecutionContext& context, std::string_view name,
                        pipe_direction direction = pipe_direction::in_out,
                        int max_instances = max_allowed_server_instances,
                        npipe::transmission_mode mode = npipe::transmission_mode::byte,
                        pipe_options options = {})
        : named_pipe_acceptor(context.get_executor(), name, direction, max_instances, mode,
                              options) {}

    named_pipe_acceptor(named_pipe_acceptor&&) noexcept = default;
    named_pipe_acceptor& operator=(named_pipe_acceptor&& other) noexcept {
        if (this != &other) {
            close();
            ex_ = other.ex_;
            impl_ = std::move(other.impl_);
        }
        return *this;
    }
    named_pipe_acceptor(const named_pipe_acceptor&) = delete;
    named_pipe_acceptor& operator=(const named_pipe_acceptor&) = delete;
    ~named_pipe_acceptor() { close(); }

    executor_type get_executor() const noexcept { return ex_; }

    /// Waits for the next client and completes with (error_code, pipe_stream): the connected
    /// pipe on this acceptor's executor (or on `pipe_executor`, e.g. a strand of its own).
    /// Clients refused by current_user_only or accept_peer are dropped and the wait goes on.
    /// Errors:
    /// ::asio::error::operation_aborted (cancelled, or the acceptor closed or destroyed),
    /// ::asio::error::bad_descriptor (the acceptor was already closed), EMFILE / ENFILE when
    /// out of descriptors (the client stays queued), npipe::errc::name_taken_over when the
    /// socket file was removed or replaced by another server (a .NET server created without
    /// FirstPipeInstance does that to a live server): no client can reach this acceptor any
    /// more, every later accept fails the same way, and closing it leaves the new file alone.
    /// On Windows with max_instances 1, npipe::errc::name_taken_over when another server created
    /// the name while the acceptor had no instance (between a closed pipe and the next accept:
    /// each instance is the name's first, as with .NET).
    /// Supports terminal, partial and total cancellation.
    template <class CompletionToken>
    auto async_accept(CompletionToken&& token) {
        return async_accept(ex_, std::forward<CompletionToken>(token));
    }
    template <class CompletionToken>
    auto async_accept(const executor_type& pipe_executor, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code, pipe_stream)>(
            detail::accept_op<executor_type, pipe_stream>{impl_, pipe_executor}, token, ex_);
    }

    /// As above, failing with npipe::errc::timed_out when no client arrives within `timeout`.
    template <class CompletionToken>
    auto async_accept(std::chrono::milliseconds timeout, CompletionToken&& token) {
        return async_with_timeout(
            ex_, timeout, [this](auto t) { return async_accept(std::move(t)); },
            std::forward<CompletionToken>(token));
    }

    /// .NET's name (WaitForConnectionAsync) for async_accept.
    template <class CompletionToken>
    auto async_wait_for_connection(CompletionToken&& token) {
        return async_accept(std::forward<CompletionToken>(token));
    }
    template <class CompletionToken>
    auto async_wait_for_connection(std::chrono::milliseconds timeout, CompletionToken&& token) {
        return async_accept(timeout, std::forward<CompletionToken>(token));
    }

    /// Cancels the pending accepts (operation_aborted); the acceptor keeps listening.
    void cancel() noexcept {
        if (impl_)
            impl_->cancel();
    }

    /// Stops listening: pending accepts complete with operation_aborted, the socket file is
    /// removed, queued clients that were not accepted see the connection closed. Pipes already
    /// accepted are not affected. Idempotent.
    void close() noexcept {
        if (impl_)
            impl_->close();
    }

    /// Whether the acceptor is listening.
    bool is_open() const noexcept { return impl_ && impl_->listener.is_open(); }

    /// The pipe's type, as given to the constructor.
    npipe::transmission_mode transmission_mode() const noexcept;

    /// The limit given to the constructor (max_allowed_server_instances for none).
    int max_instances() const noexcept;

    /// The name given to the constructor, and the socket file it listens on.
    const std::string& pipe_name() const noexcept;
    const std::string& socket_path() const noexcept;

  private:
    executor_type ex_;
    std::shared_ptr<detail::acceptor_impl> impl_;
};

}  // namespace npipe::asio
