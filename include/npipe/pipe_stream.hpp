// npipe/pipe_stream.hpp: the stream every pipe end is (.NET's PipeStream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/options.hpp"
#include "npipe/types.hpp"

namespace npipe {

namespace detail {
struct pipe_state;
}

/// Who is on the other end of a local pipe, as the kernel reports it (SO_PEERCRED).
/// .NET exposes only the user name; npipe also gives the group and the process id.
struct peer_credentials {
    user_id uid = static_cast<user_id>(-1);
    group_id gid = static_cast<group_id>(-1);
    process_id pid = 0;
};

/// One end of a pipe: the base of named_pipe_server, named_pipe_client and the anonymous pipe
/// ends. Reads and writes block; the throwing calls throw npipe::pipe_error, the overloads taking
/// std::error_code& never throw. A pipe_stream is movable, not copyable.
class pipe_stream {
  public:
    using native_handle_type = npipe::native_handle_type;

    pipe_stream(pipe_stream&&) noexcept;
    pipe_stream& operator=(pipe_stream&&) noexcept;
    pipe_stream(const pipe_stream&) = delete;
    pipe_stream& operator=(const pipe_stream&) = delete;
    virtual ~pipe_stream();

    /// Reads up to buffer.size() bytes, blocking until at least one is available.
    /// Returns 0 at end of stream (the peer closed or shut down its write side).
    ///
    /// Message pipes in message read mode (read_mode()): returns bytes of one message only,
    /// never crossing into the next, and returns once the buffer is full or the message is
    /// complete; is_message_complete() then says which. An empty message reads as 0 with
    /// is_message_complete() true and end_of_stream() false. Errors: message_too_large (an
    /// incoming message over pipe_options::max_message_size, skipped: the next read gets the
    /// one after it; bytes of it returned by earlier partial reads are void), broken_pipe (the
    /// peer closed inside a message), protocol_error (the peer broke the wire format; sticky).
    /// Message pipes in byte read mode: the payload bytes of successive messages, as a stream.
    /// Memory: a message pipe receives whole records of up to 64 KiB into a buffer that belongs
    /// to the reading thread (allocated at its first message-pipe read, freed when it exits);
    /// a pipe holds it only while a record is partly read, so an idle pipe holds none.
    std::size_t read(std::span<std::byte> buffer);
    std::size_t read(std::span<std::byte> buffer, std::error_code& ec) noexcept;

    /// Writes all of data or fails; a peer that has gone away gives errc::broken_pipe
    /// (never SIGPIPE), and every later write fails the same way.
    /// Message pipes: each write is one message, sent whole (writes from several threads never
    /// interleave inside a message); over max_message_size it fails with
    /// errc::message_too_large and sends nothing.
    void write(std::span<const std::byte> data);
    void write(std::span<const std::byte> data, std::error_code& ec) noexcept;
    void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }

    /// Reads one byte: its value 0..255, or -1 at end of stream (or, in message read mode, an
    /// empty message: use read() and end_of_stream() to tell them apart).
    int read_byte();
    /// Writes one byte.
    void write_byte(std::uint8_t value);

    /// Sends the messages that pipe_options::coalesce_messages holds back, waiting for a write
    /// in progress in another thread to finish first. Otherwise (byte pipes, message pipes
    /// without coalescing) does nothing, as in .NET on Linux: writes go straight to the kernel.
    /// Errors as for write(), including one from an earlier send of buffered messages.
    void flush();
    void flush(std::error_code& ec) noexcept;

    /// Ends our side of the data flow: the peer reads end of stream after the bytes already
    /// written, and can still send to us. (.NET has no equivalent; a close does both.)
    void shutdown_write();

    /// Whether this end was opened for reading / writing and is still open.
    bool can_read() const noexcept;
    bool can_write() const noexcept;

    /// Whether a peer is attached (a server that accepted, a client that connected).
    bool is_connected() const noexcept;

    /// The pipe's type (.NET's TransmissionMode): the server's choice; a client learns it when
    /// it connects, and throws errc::not_connected before that.
    npipe::transmission_mode transmission_mode() const;

    /// How reads split the data (.NET's ReadMode): a message-mode server starts in message read
    /// mode; clients and byte pipes start in byte read mode, as on Windows.
    npipe::transmission_mode read_mode() const noexcept;

    /// Sets the read mode. Message read mode on a byte pipe fails with errc::not_supported; on
    /// a client that has not connected yet (its pipe's type unknown) with errc::not_connected.
    /// A change takes effect at the next read, also in the middle of a message.
    void set_read_mode(npipe::transmission_mode mode);
    void set_read_mode(npipe::transmission_mode mode, std::error_code& ec) noexcept;

    /// Whether the last read ended at a message boundary (.NET's IsMessageComplete): false
    /// while bytes of the current message remain to be read. True before the first read, after
    /// a read error, and always on a byte pipe.
    bool is_message_complete() const noexcept;

    /// Whether a read has returned 0 because the stream ended. Needed on message pipes, where
    /// an empty message also reads as 0 bytes; on a byte pipe every 0 is the end of stream.
    /// (.NET has no equivalent; on Windows the pipe's state becomes Broken.)
    bool end_of_stream() const noexcept;

    /// The credentials of the connected peer; throws errc::not_connected without one, and
    /// errc::not_supported on an anonymous pipe.
    peer_credentials get_peer_credentials() const;

    /// Closes the pipe. Safe to call from another thread to wake a blocked
    /// wait_for_connection or connect, which then fail with errc::operation_aborted, and a
    /// blocked read or write on a named pipe (the read returns end of stream). The connection
    /// ends at once for the peer; the descriptor itself is released when the object is
    /// destroyed, so another thread's read never meets a reused descriptor number. (A read
    /// blocked on an anonymous pipe ends when its writer closes: a FIFO cannot be woken.)
    /// Idempotent.
    void close() noexcept;

    /// The file descriptor of the connection (-1 when there is none). Still owned by the pipe.
    native_handle_type native_handle() const noexcept;

    /// The name this pipe was opened with, as given.
    const std::string& pipe_name() const noexcept;

  protected:
    explicit pipe_stream(std::shared_ptr<detail::pipe_state> state) noexcept;
    detail::pipe_state& state() const noexcept { return *state_; }
    const std::shared_ptr<detail::pipe_state>& shared_state() const noexcept { return state_; }

  private:
    std::shared_ptr<detail::pipe_state> state_;
};

}  // namespace npipe
