// The transport: what moves the bytes of one connected pipe end. Every pipe end holds one, in
// the synchronous layer (pipe_state::conn) and the asynchronous one (asio pipe_impl), and the
// message framing (framing/message_channel) runs over any of them. The core calls no OS
// function: each kind of connection is one implementation under src/transport/<name>/ (Unix
// sockets, FIFOs today; Windows pipe handles and shared memory fit the same interface).
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>
#include <span>
#include <system_error>

#include "npipe/pipe_stream.hpp"

namespace npipe::detail {

/// ec.clear() for the success path of a receive or send: clears only an error that is set,
/// because clear() calls system_category() out of line (in libstdc++), on every read and write,
/// while ec is almost always clear already.
inline void clear_error(std::error_code& ec) noexcept {
    if (ec) [[unlikely]]
        ec.clear();
}

/// Which direction shutdown() ends.
enum class shutdown_how { receive, send, both };

class transport {
  public:
    virtual ~transport() = default;

    /// Whether each send() arrives as one receive() on the other side (a record transport such
    /// as SOCK_SEQPACKET), or the bytes form a stream.
    virtual bool keeps_boundaries() const noexcept = 0;

    /// Record transports: the largest record send() takes, and the buffer receive() needs to
    /// take any record a peer may send. Stream transports: no limit, and any buffer.
    virtual std::size_t max_send_size() const noexcept {
        return std::numeric_limits<std::size_t>::max();
    }
    virtual std::size_t receive_size() const noexcept { return 1; }

    /// Receives into `buffer`: some bytes of a stream, or one whole record (which must fit:
    /// otherwise errc::protocol_error). Returns 0 at end of stream (a reset peer included: what
    /// it sent was delivered first). Blocks unless the handle is non-blocking (the asynchronous
    /// layer's), which reports EAGAIN as a std::system_category error. With `spin` > 0 it first
    /// polls without sleeping in the kernel for up to that long (pipe_options::spin_before_block).
    virtual std::size_t receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                                std::error_code& ec) noexcept = 0;

    /// Sends the concatenation of `pieces` (at most four non-empty ones). A record transport
    /// sends them as one record, whole or not at all; a stream transport may send fewer bytes
    /// (returned). Never raises a signal; a peer that has gone gives errc::broken_pipe.
    virtual std::size_t send(std::span<const std::span<const std::byte>> pieces,
                             std::error_code& ec) noexcept = 0;

    /// Ends one direction for the peer: `send` makes it read end of stream, `receive` makes its
    /// writes fail. Returns false when the transport cannot end a direction and stay open (a FIFO
    /// end, which flows one way): it has closed its handle instead.
    virtual bool shutdown(shutdown_how how, std::error_code& ec) noexcept = 0;

    /// Ends the connection for the peer and wakes a thread blocked in receive() or send() on it,
    /// from any thread. The handle stays allocated where the transport can end without closing
    /// it (so a blocked thread never meets a reused handle); otherwise it is closed.
    virtual void end() noexcept = 0;

    /// Closes the handle now: later calls fail (EBADF), and a thread still inside one never
    /// meets a reused handle through this object. The destructor does it too. Idempotent.
    virtual void close() noexcept = 0;

    /// Who is on the other end, as the system reports it; errc::not_supported where it cannot.
    virtual peer_credentials peer(std::error_code& ec) const noexcept = 0;

    /// Whether the peer can only run on the one CPU this thread is confined to (spinning then
    /// only delays it). False when unknown.
    virtual bool peer_shares_our_only_cpu() const noexcept { return false; }

    /// Why the stream ended, when it ended in an error a relay saw (the remote transport's dead
    /// network) rather than the peer's close. Consulted only at end of stream.
    virtual std::error_code end_of_stream_error() const noexcept { return {}; }

    /// Whether the connection is a message pipe by its own nature (a Windows pipe handle knows
    /// its type): a client then learns the pipe's type from it, with no refused attempt.
    virtual bool native_message_pipe() const noexcept { return false; }

    /// Whether native_handle() turns readable when data arrives. False where the data moves
    /// elsewhere (shared memory): the handle then shows the peer's hang-up only, and a
    /// caller that waits for data must read (which blocks) instead of polling it.
    virtual bool handle_shows_data() const noexcept { return true; }

    /// Where handle_shows_data() is false: the bytes a receive would take now without waiting
    /// (what FIONREAD says of a socket).
    virtual std::size_t available() const noexcept { return 0; }

    /// Where handle_shows_data() is false, before a reactor waits on native_handle() for data:
    /// true when data or the end of the stream is there already; otherwise false, and the
    /// handle turns readable when either comes.
    virtual bool prepare_receive_wait() noexcept { return true; }

    /// The OS handle, for readiness waits (blocking ones and Asio's reactor); -1 once closed.
    virtual pipe_stream::native_handle_type native_handle() const noexcept = 0;

    /// What a sender that found no room (EAGAIN on a non-blocking handle) waits for: the
    /// connection turning writable (a socket: the default), or `handle` turning readable (a
    /// shared-memory pipe's send bell, which the peer's reader rings when it frees room).
    struct send_wait {
        pipe_stream::native_handle_type handle;
        bool readable;
    };
    virtual send_wait send_wait_handle() const noexcept { return {native_handle(), false}; }
};

/// The rest of send_all after a stream transport's short send of `sent` bytes.
void send_rest(transport& t, std::span<const std::span<const std::byte>> pieces, std::size_t sent,
               std::error_code& ec) noexcept;

/// Sends all of `pieces`, resuming a stream transport's short sends (a record transport sends
/// whole records). Inline, so that a write is one call from pipe_stream into the transport:
/// every frame between the caller and the system call is a return after it, and a return
/// right after a system call measured tens of cycles on the machines npipe is benchmarked on.
inline void send_all(transport& t, std::span<const std::span<const std::byte>> pieces,
                     std::error_code& ec) noexcept {
    const bool records = t.keeps_boundaries();
    std::size_t total = 0;
    if (!records) {
        for (auto piece : pieces)
            total += piece.size();
        if (total == 0) {
            clear_error(ec);  // nothing to send on a stream: no call at all
            return;
        }
    }
    std::size_t sent = t.send(pieces, ec);
    if (ec || records || sent == total) [[likely]]
        return;
    send_rest(t, pieces, sent, ec);
}

}  // namespace npipe::detail
