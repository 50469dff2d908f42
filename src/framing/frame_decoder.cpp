#include "framing/frame_decoder.hpp"

#include <algorithm>

namespace npipe::detail {

void frame_decoder::reset() noexcept {
    *this = frame_decoder(max_message_size_);
}

frame_decoder::result frame_decoder::next(std::span<const std::byte> input,
                                          std::size_t max_payload) noexcept {
    std::size_t used = 0;
    for (;;) {
        if (in_frame_ && frame_left_ > 0) {
            std::size_t available = input.size() - used;
            if (discarding_) {
                auto skip =
                    static_cast<std::uint32_t>(std::min<std::size_t>(frame_left_, available));
                frame_left_ -= skip;
                used += skip;
                if (frame_left_ > 0)
                    return {event::need_input, used, {}};
                continue;
            }
            if (available == 0)
                return {event::need_input, used, {}};
            std::size_t take =
                std::min({static_cast<std::size_t>(frame_left_), available, max_payload});
            frame_left_ -= static_cast<std::uint32_t>(take);
            auto payload = input.subspan(used, take);
            return {event::payload, used + take, payload};
        }
        if (in_frame_) {
            // The current frame's payload is all consumed.
            in_frame_ = false;
            if (frame_final_) {
                message_size_ = 0;
                if (discarding_) {
                    discarding_ = false;  // its rejection was reported when it began
                    continue;
                }
                in_message_ = false;
                return {event::message_end, used, {}};
            }
            continue;  // a header of the same message follows
        }
        // Gather a header; it may arrive split over several inputs.
        if (used == input.size())
            return {event::need_input, used, {}};
        if (header_have_ == 0 && message_size_ == 0 && !discarding_)
            in_message_ = true;
        while (header_have_ < frame_header_size && used < input.size())
            header_[header_have_++] = input[used++];
        if (header_have_ < frame_header_size)
            return {event::need_input, used, {}};
        header_have_ = 0;
        std::uint32_t value = decode_frame_header(header_);
        frame_left_ = value & frame_length_mask;
        frame_final_ = (value & frame_more_flag) == 0;
        in_frame_ = true;
        if (!discarding_) {
            // An empty frame that does not end the message carries nothing, yet costs a header
            // to decode: it counts as its header's size, so a stream of them ends as an
            // oversize message instead of running for ever. (npipe never sends one.)
            message_size_ += frame_left_ == 0 && !frame_final_ ? frame_header_size : frame_left_;
            if (message_size_ > max_message_size_) {
                discarding_ = true;
                in_message_ = false;
                return {event::message_too_large, used, {}};
            }
        }
    }
}

}  // namespace npipe::detail
