// The synchronous layer's message semantics (one write = one message, reads that stop at
// message boundaries, is_message_complete, the size limit, coalescing) over any transport
// (core/transport.hpp). The transport owns its quirks (SOCK_SEQPACKET's record size, for
// instance); this layer sees only bytes and frames (frame.hpp) and calls no OS function. Reads
// go through the one message reader (message_reader.hpp) that npipe::asio uses too.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>

#include "core/transport.hpp"
#include "framing/message_reader.hpp"
#include "npipe/options.hpp"

namespace npipe::detail {

class message_channel {
  public:
    /// Allocates nothing for data: an idle channel holds no buffer (see held_), and a coalescing
    /// one allocates its write buffer at its first buffered write.
    /// The channel shares the transport with its pipe, so a reader woken by a close still finds
    /// it (closed) after the pipe has let go of it.
    message_channel(std::shared_ptr<transport> transport, std::size_t max_message_size);

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

    /// Before a read blocks in the transport's receive, poll for up to `spin`
    /// (pipe_options::spin_before_block). Call before the channel is shared.
    void set_spin(std::chrono::nanoseconds spin) noexcept { spin_ = spin; }

    /// Sends what coalescing has buffered (nothing to do without coalescing). Waits for a
    /// writer in another thread to finish its message first.
    void flush(std::error_code& ec) noexcept;

    /// Sends what is buffered unless another thread is writing right now (which would make us
    /// wait behind a send that may block); errors are dropped. For close and disconnect.
    void flush_if_idle() noexcept;

    /// Whether the last read ended at a message boundary (true before any read).
    bool is_message_complete() const noexcept { return reader_.is_message_complete(); }

    /// Whether a read has returned 0 because the stream ended (an empty message also reads 0).
    bool end_of_stream() const noexcept { return reader_.end_of_stream(); }

    std::size_t max_message_size() const noexcept { return reader_.max_message_size(); }

  private:
    std::shared_ptr<transport> transport_;
    message_reader reader_;  ///< guarded by read_mutex_
    std::mutex read_mutex_;
    std::mutex write_mutex_;
    // Coalescing: out_[0, out_size_) holds whole frames not yet sent (guarded by write_mutex_);
    // out_pending_ lets a reader see without locking that there is something to flush.
    std::unique_ptr<std::byte[]> out_;
    std::size_t out_capacity_ = 0, out_size_ = 0;
    bool coalesce_ = false;
    std::atomic<bool> out_pending_{false};
    std::error_code out_error_;  ///< a send of buffered frames failed outside write()
    std::chrono::nanoseconds spin_{0};

    void send_buffered(std::error_code& ec) noexcept;  ///< write_mutex_ held
    /// Before a read blocks: sends what coalescing holds, so a reader about to wait for an
    /// answer does not sit on the request that provokes it.
    void flush_before_blocking() noexcept;
};

}  // namespace npipe::detail
