// The message frame format (docs/protocol.md, "Frames"): a 4-byte little-endian header, then the
// payload. Header bit 31 says more frames of the same message follow; bits 0..30 are this
// frame's payload length. Independent of any transport: the same bytes work on SOCK_SEQPACKET,
// a stream socket or TLS.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace npipe::detail {

inline constexpr std::size_t frame_header_size = 4;
inline constexpr std::uint32_t frame_more_flag = 0x8000'0000u;
inline constexpr std::uint32_t frame_length_mask = 0x7fff'ffffu;
/// The largest payload one frame can describe.
inline constexpr std::size_t max_frame_payload = frame_length_mask;

using frame_header = std::array<std::byte, frame_header_size>;

/// Encodes a header; payload_size must be at most max_frame_payload.
constexpr frame_header encode_frame_header(std::uint32_t payload_size, bool more) noexcept {
    std::uint32_t v = (payload_size & frame_length_mask) | (more ? frame_more_flag : 0u);
    return {std::byte(v & 0xff), std::byte((v >> 8) & 0xff), std::byte((v >> 16) & 0xff),
            std::byte((v >> 24) & 0xff)};
}

/// The raw 32-bit header value of 4 bytes (little-endian, whatever the host's order).
constexpr std::uint32_t decode_frame_header(const std::byte* p) noexcept {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
}

/// Splits `message` into frames whose payloads hold at most `max_payload` bytes (at least 1 is
/// used) and calls emit(const frame_header&, std::span<const std::byte> payload) for each, in
/// order; the last frame has no "more" flag, and an empty message is one empty frame. Stops
/// early, returning false, when emit returns false. The payload spans point into `message`:
/// nothing is copied, so a transport can send header and payload with one gathered write.
template <class Emit>
bool for_each_frame(std::span<const std::byte> message, std::size_t max_payload, Emit&& emit) {
    if (max_payload == 0)
        max_payload = 1;
    if (max_payload > max_frame_payload)
        max_payload = max_frame_payload;
    do {
        std::size_t size = message.size() < max_payload ? message.size() : max_payload;
        bool more = size < message.size();
        frame_header header = encode_frame_header(static_cast<std::uint32_t>(size), more);
        if (!emit(header, message.first(size)))
            return false;
        message = message.subspan(size);
    } while (!message.empty());
    return true;
}

}  // namespace npipe::detail
