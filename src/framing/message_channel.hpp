// Message semantics (one write = one message, reads that stop at message boundaries,
// is_message_complete, the size limit) on top of any transport that moves bytes. The
// transport owns its quirks (SOCK_SEQPACKET's record size, for instance); this layer sees
// only bytes and frames (frame.hpp), so a stream or TLS transport can reuse it unchanged.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>

#include "framing/frame_decoder.hpp"
#include "npipe/options.hpp"

namespace npipe::detail {

/// What a message_channel needs from a connection. Implementations are used by one reader and
/// one writer thread at a time (the channel serialises each side).
class message_transport {
  public:
    virtual ~message_transport() = default;

    /// Receives the next bytes into `buffer` (at least receive_size() long): on a record
    /// transport, exactly one whole record. Returns 0 at end of stream. Blocks.
    virtual std::size_t receive(std::span<std::byte> buffer, std::error_code& ec) noexcept = 0;

    /// Sends the concatenation of `pieces` (at most max_send_size() bytes in all) as one unit,
    /// all of it or nothing usable (an error then breaks the connection).
    virtual void send(std::span<const std::span<const std::byte>> pieces,
                      std::error_code& ec) noexcept = 0;

    /// The largest unit send() takes: frames are cut so that header + payload fit.
    virtual std::size_t max_send_size() const noexcept = 0;

    /// The buffer size receive() needs (the largest record a peer may send).
    virtual std::size_t receive_size() const noexcept = 0;
};

class message_channel {
  public:
    /// Allocates nothing for data: an idle channel holds no buffer (see held_), and a coalescing
    /// one allocates its write buffer at its first buffered write.
    message_channel(std::unique_ptr<message_transport> transport, std::size_t max_message_size);

    /// In message read mode: bytes of one message, never crossing into the next; returns when
    /// the buffer is full or the message is complete (0 for an empty message). In byte read
    /// mode: payload bytes of successive messages, as soon as at least one is available.
    /// Returns 0 with end_of_stream() at the end of the stream. Errors: message_too_large (an
    /// incoming message over the limit; the next read continues with the following message),
    /// broken_pipe (message mode: the stream ended inside a message), protocol_error
    /// (the transport received something that is not our wire format; sticky).
    std::size_t read(std::span<std::byte> buffer, transmission_mode read_mode,
                     std::error_code& ec) noexcept;

    /// Sends `message` as one message: message_too_large (and nothing sent) when it is over the
    /// limit. Concurrent writers are serialised, so their messages never interleave.
    void write(std::span<const std::byte> message, std::error_code& ec) noexcept;

    /// Turns on write coalescing (pipe_options::coalesce_messages): write() appends whole
    /// frames to a buffer of max_send_size() bytes, sent as one unit when the next message
    /// does not fit, on flush(), before a read blocks, and at flush_if_idle(). The buffer is
    /// allocated by the first write that needs it and kept. Call before the channel is shared.
    void enable_coalescing() noexcept { coalesce_ = true; }

    /// Before a read blocks in receive(), poll socket `fd` with non-blocking peeks for up to
    /// `spin` (pipe_options::spin_before_block). Call before the channel is shared.
    void set_spin(int fd, std::chrono::nanoseconds spin) noexcept {
        spin_fd_ = fd;
        spin_ = spin;
    }

    /// Sends what coalescing has buffered (nothing to do without coalescing). Waits for a
    /// writer in another thread to finish its message first.
    void flush(std::error_code& ec) noexcept;

    /// Sends what is buffered unless another thread is writing right now (which would make us
    /// wait behind a send that may block); errors are dropped. For close and disconnect.
    void flush_if_idle() noexcept;

    /// Whether the last read ended at a message boundary (true before any read).
    bool is_message_complete() const noexcept { return complete_.load(std::memory_order_relaxed); }

    /// Whether a read has returned 0 because the stream ended (an empty message also reads 0).
    bool end_of_stream() const noexcept { return eos_.load(std::memory_order_relaxed); }

    std::size_t max_message_size() const noexcept { return decoder_.max_message_size(); }

  private:
    std::unique_ptr<message_transport> transport_;
    // The receive buffer, held only while it has bytes not yet decoded (a record the reader has
    // consumed part of): held_[begin_, end_). A read that must receive borrows its thread's
    // buffer (see message_channel.cpp) and hands it back once every byte is decoded, so an idle
    // pipe, or one whose reader keeps up, holds none, and a streaming reader allocates nothing.
    std::unique_ptr<std::byte[]> held_;
    std::size_t held_capacity_ = 0;
    std::size_t begin_ = 0, end_ = 0;
    frame_decoder decoder_;
    std::error_code pending_;  ///< an error found after bytes were already returned (byte mode)
    std::error_code failed_;   ///< a fatal transport error: every later read reports it
    std::atomic<bool> complete_{true};
    std::atomic<bool> eos_{false};
    std::mutex read_mutex_;
    std::mutex write_mutex_;
    // Coalescing: out_[0, out_size_) holds whole frames not yet sent (guarded by write_mutex_);
    // out_pending_ lets a reader see without locking that there is something to flush.
    std::unique_ptr<std::byte[]> out_;
    std::size_t out_capacity_ = 0, out_size_ = 0;
    bool coalesce_ = false;
    std::atomic<bool> out_pending_{false};
    std::error_code out_error_;  ///< a send of buffered frames failed outside write()
    int spin_fd_ = -1;
    std::chrono::nanoseconds spin_{0};

    void send_buffered(std::error_code& ec) noexcept;  ///< write_mutex_ held
    void spin_until_readable() noexcept;
    /// read_mutex_ held: receives the next bytes into a borrowed buffer (held_ afterwards);
    /// 0 with ec clear at end of stream.
    std::size_t receive(std::error_code& ec) noexcept;
    /// read_mutex_ held: gives held_ back to this thread once every byte in it is decoded.
    void release_if_drained() noexcept;
};

}  // namespace npipe::detail
