// npipe/detail/message_read.hpp: the vocabulary of a message read, shared by the message reader
// inside the library (src/framing/message_reader.hpp) and npipe::asio's read operations, which
// hand it their buffers. Not part of the public API.
#pragma once

#include <cstddef>
#include <span>

namespace npipe::detail {

/// What a read returns: payload bytes as a stream (byte read mode), bytes of one message up to
/// the buffer's size (message read mode), or one whole message (async_read_message).
enum class read_kind { bytes, message_part, whole_message };

/// Where a read puts payload (the caller's buffers, a dynamic buffer, ...).
class payload_sink {
  public:
    /// How many more bytes fit.
    virtual std::size_t room() const noexcept = 0;
    /// Appends bytes (at most room()); false when the storage cannot grow (out of memory).
    virtual bool put(std::span<const std::byte> bytes) noexcept = 0;

  protected:
    ~payload_sink() = default;
};

/// The progress of one read, kept by its driver across the steps of the read.
struct read_progress {
    std::size_t n = 0;      ///< payload bytes delivered to the sink
    bool started = false;   ///< the first step ran (sticky errors are reported once, there)
    bool overflow = false;  ///< whole_message: the message did not fit; its rest is skipped
};

}  // namespace npipe::detail
