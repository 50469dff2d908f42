// npipe/asio/detail/pipe_impl.hpp: the state behind an asynchronous pipe, shared (std::shared_ptr)
// between the pipe object and its pending operations, so an operation resumed after the pipe was
// closed or destroyed still finds valid memory and completes with operation_aborted.
// Not part of the public API.
#pragma once

#ifdef _WIN32
// Windows: a proactor over overlapped pipe handles (npipe/asio/detail/windows/).
#include "npipe/asio/detail/windows/pipe_impl.hpp"
#else

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/socket_base.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "npipe/detail/message_read.hpp"
#include "npipe/options.hpp"

namespace npipe::detail {
class transport;
class message_reader;
namespace platform {
class endpoint_watch;
}
}  // namespace npipe::detail

namespace npipe::asio::detail {

/// What registers a handle with Asio's reactor. Only its readiness waits are used: the I/O goes
/// through the pipe's transport (src/core/transport.hpp) once the reactor says it is ready.
using socket_type = ::asio::generic::stream_protocol::socket;

class instance_pool;  // the max_instances quota of an acceptor (src/asio/instance_pool.hpp)

/// Whether a non-blocking step finished the operation or needs the socket to become ready.
/// What a non-blocking step did: finished, needs the socket to become ready, or did its share
/// of work for this event-loop turn and must be continued after other handlers have run.
enum class io_step { done, would_block, yield };

using npipe::detail::payload_sink;
using npipe::detail::read_kind;
using npipe::detail::read_progress;

/// The progress of one message write across its non-blocking steps.
struct write_progress {
    std::size_t offset = 0;   ///< message bytes sent so far
    bool started = false;     ///< a record has gone out: the message can no longer be taken back
    bool final_sent = false;  ///< the last frame went out
    /// Bytes of the current frame already sent: a stream transport (shared memory) may take a
    /// frame in parts across waits.
    std::size_t frame_sent = 0;
};

/// async_connect's waiting gear: a backoff timer, and the platform's watch on the place the
/// server's endpoint appears (registered with the reactor like a connection).
struct connector {
    explicit connector(const ::asio::any_io_executor& ex);
    ~connector();
    ::asio::steady_timer timer;
    socket_type watch;
    std::unique_ptr<npipe::detail::platform::endpoint_watch> endpoint_watch;
};

struct pipe_impl {
    explicit pipe_impl(const ::asio::any_io_executor& ex);
    ~pipe_impl();
    pipe_impl(const pipe_impl&) = delete;
    pipe_impl& operator=(const pipe_impl&) = delete;

    /// The connection's handle registered with Asio's reactor, for readiness waits only: the
    /// transport owns the handle and does the I/O.
    socket_type socket;
    /// Shared-memory pipes: the send bell, registered for the waits of a writer that found the
    /// ring full (the peer's reader rings it when it frees room). Closed on other transports,
    /// whose writers wait for `socket` to turn writable.
    socket_type send_bell;
    std::shared_ptr<npipe::detail::transport> transport;  ///< while connected (kept once closed)
    std::string name;                                     ///< the pipe name, as given
    pipe_direction direction = pipe_direction::in_out;
    npipe::transmission_mode transmission = npipe::transmission_mode::byte;
    bool transmission_known = true;  ///< false for a client until it connects
    npipe::transmission_mode read_mode = npipe::transmission_mode::byte;
    std::size_t max_message_size = pipe_options::default_max_message_size;
    bool write_broken = false;  ///< a write hit EPIPE (or a message was torn): writes fail
    /// Bumped by close() and cancel(): an operation that sees a change while it waits gives up,
    /// even when the wait it was in had already completed successfully (cancel racing
    /// completion).
    unsigned close_generation = 0;
    unsigned cancel_generation = 0;
    /// Message pipes, while connected: the core's message reader (the synchronous one's).
    std::unique_ptr<npipe::detail::message_reader> messages;
    std::shared_ptr<instance_pool> pool;    ///< accepted pipes: the acceptor quota slot held
    std::unique_ptr<connector> connecting;  ///< clients: created by the first async_connect
    std::string path;                       ///< clients: the socket path
    pipe_options options;                   ///< clients: as given

    bool is_open() const noexcept { return socket.is_open(); }

    /// Waits until a write that would block may go on (or the wait is cancelled).
    template <class Handler>
    void async_wait_writable(Handler&& handler) {
        if (send_bell.is_open())
            send_bell.async_wait(::asio::socket_base::wait_read, std::forward<Handler>(handler));
        else
            socket.async_wait(::asio::socket_base::wait_write, std::forward<Handler>(handler));
    }

    /// Closes the connection and gives the instance slot back. Pending operations complete
    /// with ::asio::error::operation_aborted. Idempotent.
    void close() noexcept;
    /// Cancels the pending operations (operation_aborted); the pipe stays usable.
    void cancel() noexcept;

    /// Takes a connection: shuts down the direction this end does not use (as .NET), registers
    /// it with the reactor, non-blocking, and sets up the reading of a message pipe. On failure
    /// the connection is closed.
    void adopt(std::shared_ptr<npipe::detail::transport> connection, npipe::transmission_mode mode,
               std::error_code& ec) noexcept;

    /// One non-blocking step of a read: bytes from a byte pipe (into the first non-empty
    /// buffer), or a message-pipe read (see read_kind) into `sink`. Errors: eof at the end of
    /// the stream (or the relay's failure), message_too_large, broken_pipe (stream ended inside
    /// a message), protocol_error (sticky).
    io_step read_bytes(std::span<std::byte> buffer, std::size_t& n, std::error_code& ec) noexcept;
    io_step read_message(payload_sink& sink, read_kind kind, read_progress& progress,
                         std::error_code& ec) noexcept;
    /// A read cancelled inside a message gives up that message: the next read starts with the
    /// one after it, so the stream stays in step.
    void abandon_read(const read_progress& progress) noexcept;

    /// One non-blocking step of a byte-pipe write (possibly short).
    io_step write_bytes(std::span<const ::asio::const_buffer> buffers, std::size_t& n,
                        std::error_code& ec) noexcept;
    /// One non-blocking step of writing `message` (total bytes) as one message.
    io_step write_message(std::span<const ::asio::const_buffer> message, std::size_t total,
                          write_progress& progress, std::error_code& ec) noexcept;
    /// A write cancelled inside a message cannot take its first records back: the write side
    /// is shut down, so the peer sees a torn message (broken_pipe) rather than a corrupt one.
    void abandon_write(const write_progress& progress) noexcept;

    /// Before a wait for data on `socket`: true when the wait would be wrong because data is
    /// there already in a place the socket does not show (shared memory; the transport then
    /// makes the socket turn readable when data comes).
    bool data_waiting_unseen() noexcept;

    /// Message pipes: whether the last read ended at a message boundary / saw the end.
    bool is_message_complete() const noexcept;
    bool end_of_stream() const noexcept;

    /// Clients: one connect attempt. connected: the connection is adopted; retry: no server
    /// yet (or its backlog is full); failed: ec says why.
    enum class attempt { connected, retry, failed };
    attempt try_connect(std::error_code& ec) noexcept;
    /// Clients: starts watching the socket's directory (false when it cannot be watched: the
    /// backoff alone then paces the retries), drains the watch's events, stops watching.
    bool start_watch() noexcept;
    void drain_watch() noexcept;
    void stop_watch() noexcept;
};

/// Errors a read or write must fail with before it starts (no pipe, not connected, wrong
/// direction), or an empty code.
std::error_code check_read(const pipe_impl* impl) noexcept;
std::error_code check_write(const pipe_impl* impl) noexcept;

/// Tells an error code that means "the socket is not ready" (EAGAIN / EWOULDBLOCK).
bool would_block(const std::error_code& ec) noexcept;

}  // namespace npipe::asio::detail

#endif  // _WIN32
