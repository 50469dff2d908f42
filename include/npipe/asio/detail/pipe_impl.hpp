// npipe/asio/detail/pipe_impl.hpp: the state behind an asynchronous pipe, shared (std::shared_ptr)
// between the pipe object and its pending operations, so an operation resumed after the pipe was
// closed or destroyed still finds valid memory and completes with operation_aborted.
// Not part of the public API.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include "npipe/options.hpp"

namespace npipe::asio::detail {

/// Connected pipes of both types live in a stream socket object: Asio's reactor only needs the
/// descriptor, and message pipes (SOCK_SEQPACKET) move their records with npipe's own
/// sendmsg/recvmsg calls once the reactor says the socket is ready.
using socket_type = ::asio::generic::stream_protocol::socket;

class instance_pool;   // the max_instances quota of an acceptor (src/asio/acceptor.cpp)
struct message_state;  // the framing state of a message pipe (src/asio/pipe_impl.cpp)

/// Whether a non-blocking step finished the operation or needs the socket to become ready.
/// What a non-blocking step did: finished, needs the socket to become ready, or did its share
/// of work for this event-loop turn and must be continued after other handlers have run.
enum class io_step { done, would_block, yield };

/// What a message read returns: payload bytes as a stream (byte read mode), bytes of one
/// message up to the buffer's size (message read mode), or one whole message.
enum class read_kind { bytes, message_part, whole_message };

/// Where a message read puts payload; implemented over the caller's buffers by the templates.
class payload_sink {
  public:
    /// How many more bytes fit.
    virtual std::size_t room() const noexcept = 0;
    /// Appends bytes (at most room()); false when the storage cannot grow (out of memory).
    virtual bool put(std::span<const std::byte> bytes) noexcept = 0;

  protected:
    ~payload_sink() = default;
};

/// The progress of one message read across its non-blocking steps.
struct read_progress {
    std::size_t n = 0;      ///< payload bytes delivered to the sink
    bool started = false;   ///< the first step ran (sticky errors are reported once, there)
    bool overflow = false;  ///< whole_message: the message did not fit; its rest is skipped
};

/// The progress of one message write across its non-blocking steps.
struct write_progress {
    std::size_t offset = 0;   ///< message bytes sent so far
    bool started = false;     ///< a record has gone out: the message can no longer be taken back
    bool final_sent = false;  ///< the last frame went out
};

/// async_connect's waiting gear: a backoff timer and an inotify watch on the socket's directory.
struct connector {
    explicit connector(const ::asio::any_io_executor& ex) : timer(ex), watch(ex) {}
    ::asio::steady_timer timer;
    ::asio::posix::stream_descriptor watch;
};

struct pipe_impl {
    explicit pipe_impl(const ::asio::any_io_executor& ex);
    ~pipe_impl();
    pipe_impl(const pipe_impl&) = delete;
    pipe_impl& operator=(const pipe_impl&) = delete;

    socket_type socket;
    std::string name;  ///< the pipe name, as given
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
    std::unique_ptr<message_state> messages;  ///< message pipes, while connected
    std::shared_ptr<instance_pool> pool;      ///< accepted pipes: the acceptor quota slot held
    std::unique_ptr<connector> connecting;    ///< clients: created by the first async_connect
    std::string path;                         ///< clients: the socket path
    pipe_options options;                     ///< clients: as given
    /// Remote clients: the error that ended the forwarding (a dead network), or none. Their
    /// local socket reads end of stream either way, so a read consults this at the end.
    std::function<std::error_code()> relay_failure;

    bool is_open() const noexcept { return socket.is_open(); }

    /// Closes the connection and gives the instance slot back. Pending operations complete
    /// with ::asio::error::operation_aborted. Idempotent.
    void close() noexcept;
    /// Cancels the pending operations (operation_aborted); the pipe stays usable.
    void cancel() noexcept;

    /// Takes ownership of a connected socket: puts it in the socket object, non-blocking, and
    /// sets up the framing of a message pipe. On failure the descriptor is closed.
    void adopt(int fd, npipe::transmission_mode mode, std::error_code& ec) noexcept;

    /// What a read reports at the end of the stream: eof, or the relay's failure.
    std::error_code end_of_stream_error() const;
    /// Maps a failed byte-pipe read or write to what the synchronous API reports.
    std::error_code read_error(const std::error_code& ec) noexcept;
    std::error_code write_error(const std::error_code& ec) noexcept;

    /// One non-blocking step of a message-pipe read (see read_kind). Errors: eof at the end of
    /// the stream, message_too_large, broken_pipe (stream ended inside a message),
    /// protocol_error (sticky).
    io_step read_message(payload_sink& sink, read_kind kind, read_progress& progress,
                         std::error_code& ec) noexcept;
    /// A read cancelled inside a message gives up that message: the next read starts with the
    /// one after it, so the stream stays in step.
    void abandon_read(const read_progress& progress) noexcept;

    /// One non-blocking step of writing `message` (total bytes) as one message.
    io_step write_message(std::span<const ::asio::const_buffer> message, std::size_t total,
                          write_progress& progress, std::error_code& ec) noexcept;
    /// A write cancelled inside a message cannot take its first records back: the write side
    /// is shut down, so the peer sees a torn message (broken_pipe) rather than a corrupt one.
    void abandon_write(const write_progress& progress) noexcept;

    /// Message pipes: whether the last read ended at a message boundary / saw the end.
    bool is_message_complete() const noexcept;
    bool end_of_stream() const noexcept;

    /// Clients: one connect attempt. connected: the socket is adopted; retry: no server yet (or
    /// its backlog is full); failed: ec says why.
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
