#include "framing/message_reader.hpp"

#include <cstring>
#include <new>
#include <utility>

#include "npipe/errors.hpp"

namespace npipe::detail {

namespace {

/// Each thread's receive buffer, lent to the reader it is reading with. A record must be
/// received whole into a buffer of the transport's receive_size() (64 KiB on SOCK_SEQPACKET),
/// but it is needed only from the receive until its bytes are decoded; most reads decode
/// everything they receive, so one buffer per reading thread serves every pipe it reads. A
/// reader left with bytes to decode keeps the buffer (the thread allocates another at its next
/// receive) and hands it back when drained.
struct receive_buffer_t {
    std::unique_ptr<std::byte[]> data;
    std::size_t capacity = 0;
};
thread_local receive_buffer_t thread_buffer;

}  // namespace

bool span_sink::put(std::span<const std::byte> bytes) noexcept {
    std::memcpy(buffer_.data() + filled_, bytes.data(), bytes.size());
    filled_ += bytes.size();
    return true;
}

std::span<std::byte> message_reader::receive_buffer(std::size_t size) noexcept {
    release_if_drained();
    if (held_)
        return {};  // not drained: read() asks for input only once everything is decoded
    if (!held_) {
        auto& mine = thread_buffer;
        if (mine.capacity < size) {
            mine.data.reset();
            mine.data.reset(new (std::nothrow) std::byte[size]);
            mine.capacity = mine.data ? size : 0;
            if (!mine.data)
                return {};
        }
        held_ = std::move(mine.data);
        held_capacity_ = std::exchange(mine.capacity, 0);
    }
    begin_ = end_ = 0;
    return {held_.get(), size};
}

void message_reader::received(std::size_t n) noexcept {
    begin_ = 0;
    end_ = n;
    input_ended_ = n == 0;
}

void message_reader::receive_failed(const std::error_code& ec) noexcept {
    begin_ = end_ = 0;
    if (ec == errc::protocol_error)
        failed_ = ec;
}

void message_reader::release_if_drained() noexcept {
    if (!held_ || begin_ < end_)
        return;
    auto& mine = thread_buffer;
    if (mine.capacity < held_capacity_) {
        mine.data = std::move(held_);
        mine.capacity = held_capacity_;
    }
    held_.reset();
    held_capacity_ = 0;
    begin_ = end_ = 0;
}

std::error_code message_reader::take_error() noexcept {
    if (failed_)
        return failed_;
    return std::exchange(pending_, {});
}

void message_reader::abandon_message() noexcept {
    if (decoder_.in_message())
        skip_current_ = true;
}

bool message_reader::read(payload_sink& sink, read_kind kind, read_progress& p,
                          std::error_code& ec) noexcept {
    ec.clear();
    if (!p.started) {
        p.started = true;
        if ((ec = take_error()))
            return true;
    }
    const bool stop_at_end = kind != read_kind::bytes;
    const bool whole = kind == read_kind::whole_message;
    for (;;) {
        const bool discarding = p.overflow || skip_current_;
        const std::size_t room = discarding ? max_frame_payload : sink.room();
        auto r =
            decoder_.next(std::span<const std::byte>(held_.get() + begin_, end_ - begin_), room);
        begin_ += r.consumed;
        switch (r.what) {
            case frame_decoder::event::payload:
                if (discarding)
                    continue;
                if (r.payload.empty()) {  // no room left, and the message goes on
                    if (!whole)
                        return true;
                    p.overflow = true;  // skip the rest, then report it
                    continue;
                }
                if (!sink.put(r.payload)) {
                    p.overflow = true;  // a dynamic buffer that cannot grow
                    if (!whole) {
                        ec = std::make_error_code(std::errc::not_enough_memory);
                        return true;
                    }
                    continue;
                }
                p.n += r.payload.size();
                complete_.store(false, std::memory_order_relaxed);
                continue;
            case frame_decoder::event::message_end:
                complete_.store(true, std::memory_order_relaxed);
                if (std::exchange(skip_current_, false))
                    continue;
                if (stop_at_end) {
                    if (p.overflow)
                        ec = errc::message_too_large;
                    return true;
                }
                continue;
            case frame_decoder::event::message_too_large:
                // The message is skipped: the next read starts with the one after it.
                complete_.store(true, std::memory_order_relaxed);
                if (std::exchange(skip_current_, false))
                    continue;
                if (stop_at_end || p.n == 0) {
                    ec = errc::message_too_large;  // bytes of it copied by this read are void
                    return true;
                }
                pending_ = errc::message_too_large;  // byte mode: return what came before it
                return true;
            case frame_decoder::event::need_input:
                break;
        }
        // Everything received is decoded. A read with bytes returns them unless it must go on
        // (a message read with room left, whose message is not complete yet).
        if (p.n > 0 &&
            (kind == read_kind::bytes || (kind == read_kind::message_part && sink.room() == 0)))
            return true;
        if (!input_ended_)
            return false;
        input_ended_ = false;
        if (stop_at_end && decoder_.in_message()) {
            // The peer ended inside a message: it is torn, so none of it counts. Later reads
            // report plain end of stream.
            decoder_.reset();
            skip_current_ = false;
            complete_.store(true, std::memory_order_relaxed);
            ec = errc::broken_pipe;
            return true;
        }
        eos_.store(true, std::memory_order_relaxed);
        return true;
    }
}

}  // namespace npipe::detail
