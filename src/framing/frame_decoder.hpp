// A streaming, allocation-free decoder of message frames (frame.hpp). It reads bytes that come
// from another process, so it trusts nothing: a length a peer claims is only ever counted down
// as bytes arrive, never allocated, and a message over the limit is reported and skipped.
// fuzz/frame_decoder_fuzz.cpp fuzzes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "framing/frame.hpp"

namespace npipe::detail {

class frame_decoder {
  public:
    enum class event {
        need_input,         ///< every byte given was consumed; call again with more
        payload,            ///< `payload` holds bytes of the current message (see next())
        message_end,        ///< the current message is complete
        message_too_large,  ///< the current message exceeds the limit; its rest is skipped
    };

    struct result {
        event what = event::need_input;
        std::size_t consumed = 0;              ///< input bytes used, whatever the event
        std::span<const std::byte> payload{};  ///< event::payload only; points into the input
    };

    /// Messages whose payloads total more than max_message_size bytes (an empty frame that is
    /// not the message's last counts as 4, its header) are reported with
    /// event::message_too_large (once, as soon as a header pushes the total over) and their
    /// remaining bytes are consumed silently; the next message decodes normally.
    explicit frame_decoder(std::size_t max_message_size) noexcept
        : max_message_size_(max_message_size) {}

    /// Decodes from the start of `input`. Returns at the first event, having consumed
    /// `consumed` bytes; the caller drops those and calls again. A payload event carries at
    /// most max_payload bytes; with max_payload 0 and payload waiting, it is a payload event
    /// with an empty span ("no room"), which lets a caller whose buffer is full still learn,
    /// without taking payload, whether the message ends here. message_end can be returned
    /// for an empty input (the last frame was finished by an earlier call).
    /// Every message yields zero or more payload events and then exactly one message_end or
    /// message_too_large; payload events never follow message_too_large for that message.
    result next(std::span<const std::byte> input, std::size_t max_payload) noexcept;

    /// Whether part of a message has been consumed and neither its end nor its rejection has
    /// been reported: a stream that ends now ends inside a message.
    bool in_message() const noexcept { return in_message_; }

    /// Forgets any partial message (after the stream ended inside one).
    void reset() noexcept;

    std::size_t max_message_size() const noexcept { return max_message_size_; }

  private:
    std::size_t max_message_size_;
    std::uint64_t message_size_ = 0;  ///< payload bytes of the current message so far
    std::uint32_t frame_left_ = 0;    ///< payload bytes of the current frame not yet consumed
    std::byte header_[frame_header_size]{};
    unsigned char header_have_ = 0;  ///< header bytes gathered (a header may span inputs)
    bool in_frame_ = false;          ///< a header was decoded; its payload is being consumed
    bool frame_final_ = false;       ///< the current frame is the message's last
    bool discarding_ = false;        ///< the current message was rejected; skip its bytes
    bool in_message_ = false;
};

}  // namespace npipe::detail
