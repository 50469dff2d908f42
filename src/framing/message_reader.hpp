// The one message reader: turns received bytes into the reads the API promises (a message at a
// time, or payload as a stream), over any transport and without doing I/O itself (sans-I/O).
// The synchronous channel (message_channel) and npipe::asio's pipes drive it the same way:
//
//     while (!reader.read(sink, kind, progress, ec)) {         // needs input
//         auto buffer = reader.receive_buffer(t.receive_size()); // lent by this thread
//         n = t.receive(buffer, ...);                            // blocking or not: the driver's
//         reader.received(n);                                    // 0: end of stream
//     }
//     reader.release_if_drained();                               // whenever a read returns
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <system_error>

#include "framing/frame_decoder.hpp"
#include "npipe/detail/message_read.hpp"

namespace npipe::detail {

/// A payload_sink over one contiguous buffer.
class span_sink final : public payload_sink {
  public:
    explicit span_sink(std::span<std::byte> buffer) noexcept : buffer_(buffer) {}
    std::size_t room() const noexcept override { return buffer_.size() - filled_; }
    bool put(std::span<const std::byte> bytes) noexcept override;
    std::size_t filled() const noexcept { return filled_; }

  private:
    std::span<std::byte> buffer_;
    std::size_t filled_ = 0;
};

class message_reader {
  public:
    /// Holds no buffer until it receives (see receive_buffer()).
    explicit message_reader(std::size_t max_message_size) noexcept : decoder_(max_message_size) {}

    /// One step of a read: decodes what was received into `sink`. True when the read is done
    /// (`ec` says how it ended; with no error, progress.n bytes were read, 0 with
    /// end_of_stream() at the end), false when it needs input: receive into receive_buffer(),
    /// call received() (or receive_failed()), and call read() again.
    /// Errors: message_too_large (an incoming message over the limit or, whole_message, over
    /// the sink's room; the next read continues with the following message), broken_pipe
    /// (message reads: the stream ended inside a message), protocol_error (sticky).
    bool read(payload_sink& sink, read_kind kind, read_progress& progress,
              std::error_code& ec) noexcept;

    /// The error a read reports before it decodes anything (a sticky failure, or one found
    /// after the last read had already returned bytes), consumed; empty when there is none.
    std::error_code take_error() noexcept;

    /// A buffer of at least `size` bytes for the next receive: this thread's, lent to the reader
    /// until its bytes are decoded (one buffer per reading thread serves every pipe it reads).
    /// Empty when out of memory.
    std::span<std::byte> receive_buffer(std::size_t size) noexcept;
    /// The receive put `n` bytes at the start of receive_buffer(); 0 is the end of the stream.
    void received(std::size_t n) noexcept;
    /// The receive failed: a protocol_error (a record that is not our wire format) is sticky.
    void receive_failed(const std::error_code& ec) noexcept;
    /// Gives the buffer back to this thread once every byte in it is decoded. Call it whenever
    /// a read returns (or waits), so an idle pipe, or one whose reader keeps up, holds none.
    void release_if_drained() noexcept;

    /// A read cancelled inside a message gives up that message: the next read starts with the
    /// one after it, so the stream stays in step.
    void abandon_message() noexcept;

    /// Whether the last read ended at a message boundary (true before any read).
    bool is_message_complete() const noexcept { return complete_.load(std::memory_order_relaxed); }
    /// Whether a read has returned because the stream ended.
    bool end_of_stream() const noexcept { return eos_.load(std::memory_order_relaxed); }
    std::size_t max_message_size() const noexcept { return decoder_.max_message_size(); }

  private:
    frame_decoder decoder_;
    std::unique_ptr<std::byte[]> held_;  ///< lent by a thread: held_[begin_, end_) undecoded
    std::size_t held_capacity_ = 0;
    std::size_t begin_ = 0, end_ = 0;
    bool input_ended_ = false;  ///< received(0): the next read() reports the end
    std::error_code pending_;   ///< an error found after bytes were already returned (bytes)
    std::error_code failed_;    ///< a fatal error: every later read reports it
    bool skip_current_ = false;
    std::atomic<bool> complete_{true};
    std::atomic<bool> eos_{false};
};

}  // namespace npipe::detail
