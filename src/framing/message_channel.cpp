#include "framing/message_channel.hpp"

#include <cstring>
#include <utility>

#include "npipe/errors.hpp"

namespace npipe::detail {

message_channel::message_channel(std::unique_ptr<message_transport> transport,
                                 std::size_t max_message_size)
    : transport_(std::move(transport)),
      buffer_(std::make_unique_for_overwrite<std::byte[]>(transport_->receive_size())),
      decoder_(max_message_size) {}

std::size_t message_channel::read(std::span<std::byte> out, transmission_mode read_mode,
                                  std::error_code& ec) noexcept {
    std::lock_guard lock(read_mutex_);
    ec.clear();
    if (failed_) {
        ec = failed_;
        return 0;
    }
    if (pending_) {
        ec = std::exchange(pending_, {});
        return 0;
    }
    if (out.empty())
        return 0;
    const bool message_mode = read_mode == transmission_mode::message;
    std::size_t n = 0;
    for (;;) {
        auto r = decoder_.next(std::span<const std::byte>(buffer_.get() + begin_, end_ - begin_),
                               out.size() - n);
        begin_ += r.consumed;
        switch (r.what) {
            case frame_decoder::event::payload:
                if (r.payload.empty())
                    return n;  // the buffer is full and the message goes on
                std::memcpy(out.data() + n, r.payload.data(), r.payload.size());
                n += r.payload.size();
                complete_.store(false, std::memory_order_relaxed);
                continue;
            case frame_decoder::event::message_end:
                complete_.store(true, std::memory_order_relaxed);
                if (message_mode)
                    return n;
                continue;
            case frame_decoder::event::message_too_large:
                // The message is skipped: the next read starts with the one after it.
                complete_.store(true, std::memory_order_relaxed);
                if (message_mode || n == 0) {
                    ec = errc::message_too_large;  // bytes of it copied by this call are void
                    return 0;
                }
                pending_ = errc::message_too_large;  // byte mode: return what came before it
                return n;
            case frame_decoder::event::need_input:
                break;
        }
        // Everything received is decoded. Only block when the read has nothing to return yet,
        // or (message mode) the message is incomplete and the buffer has room for more.
        if (n == out.size() || (!message_mode && n > 0))
            return n;
        begin_ = end_ = 0;
        std::size_t got =
            transport_->receive(std::span(buffer_.get(), transport_->receive_size()), ec);
        if (ec) {
            if (ec == errc::protocol_error)
                failed_ = ec;
            return 0;
        }
        if (got == 0) {
            if (message_mode && decoder_.in_message()) {
                // The peer ended inside a message: it is torn, so none of it counts. Later
                // reads report plain end of stream.
                decoder_.reset();
                complete_.store(true, std::memory_order_relaxed);
                ec = errc::broken_pipe;
                return 0;
            }
            eos_.store(true, std::memory_order_relaxed);
            return n;
        }
        end_ = got;
    }
}

void message_channel::write(std::span<const std::byte> message, std::error_code& ec) noexcept {
    ec.clear();
    if (message.size() > decoder_.max_message_size()) {
        ec = errc::message_too_large;
        return;
    }
    std::lock_guard lock(write_mutex_);
    for_each_frame(message, transport_->max_send_size() - frame_header_size,
                   [&](const frame_header& header, std::span<const std::byte> payload) {
                       const std::span<const std::byte> pieces[2] = {header, payload};
                       transport_->send(pieces, ec);
                       return !ec;
                   });
}

}  // namespace npipe::detail
