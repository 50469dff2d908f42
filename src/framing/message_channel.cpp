#include "framing/message_channel.hpp"

#include <cstring>
#include <utility>

#include "npipe/errors.hpp"

namespace npipe::detail {

message_channel::message_channel(std::shared_ptr<transport> transport, std::size_t max_message_size)
    : transport_(std::move(transport)), reader_(max_message_size) {}

std::size_t message_channel::read(std::span<std::byte> out, transmission_mode read_mode,
                                  std::error_code& ec) noexcept {
    std::lock_guard lock(read_mutex_);
    ec.clear();
    span_sink sink(out);
    read_progress progress;
    const auto kind =
        read_mode == transmission_mode::message ? read_kind::message_part : read_kind::bytes;
    if (out.empty()) {
        ec = reader_.take_error();  // nothing to fill: never decode, never block
        return 0;
    }
    while (!reader_.read(sink, kind, progress, ec)) {
        flush_before_blocking();
        auto buffer = reader_.receive_buffer(transport_->receive_size());
        if (buffer.empty()) {
            ec = std::make_error_code(std::errc::not_enough_memory);
            break;
        }
        std::size_t got = transport_->receive(buffer, spin_, ec);
        if (ec) {
            reader_.receive_failed(ec);
            break;
        }
        reader_.received(got);
    }
    reader_.release_if_drained();
    return ec ? 0 : progress.n;
}

void message_channel::flush_before_blocking() noexcept {
    if (!out_pending_.load(std::memory_order_relaxed))
        return;
    // Only when no other thread is writing: waiting behind a send that blocks until the peer
    // reads could deadlock with a peer that waits for us to read.
    std::unique_lock write_lock(write_mutex_, std::try_to_lock);
    if (write_lock.owns_lock() && out_size_ > 0) {
        std::error_code write_ec;
        send_buffered(write_ec);
        if (write_ec)
            out_error_ = write_ec;  // the writer's next call reports it
    }
}

void message_channel::write(std::span<const std::byte> message, std::error_code& ec) noexcept {
    ec.clear();
    if (message.size() > reader_.max_message_size()) {
        ec = errc::message_too_large;
        return;
    }
    std::lock_guard lock(write_mutex_);
    if (coalesce_) {
        if (out_error_) {
            ec = std::exchange(out_error_, {});
            return;
        }
        const std::size_t framed = frame_header_size + message.size();
        if (!out_ && framed <= transport_->max_send_size()) {
            out_.reset(new (std::nothrow) std::byte[transport_->max_send_size()]);
            out_capacity_ = out_ ? transport_->max_send_size() : 0;  // no memory: send directly
        }
        if (framed <= out_capacity_) {
            if (out_size_ + framed > out_capacity_) {
                send_buffered(ec);
                if (ec)
                    return;
            }
            auto header = encode_frame_header(static_cast<std::uint32_t>(message.size()), false);
            std::memcpy(out_.get() + out_size_, header.data(), header.size());
            if (!message.empty())
                std::memcpy(out_.get() + out_size_ + frame_header_size, message.data(),
                            message.size());
            out_size_ += framed;
            out_pending_.store(true, std::memory_order_relaxed);
            return;
        }
        // Too big to buffer: what is buffered goes first, then this one without a copy.
        if (out_size_ > 0) {
            send_buffered(ec);
            if (ec)
                return;
        }
    }
    for_each_frame(message, transport_->max_send_size() - frame_header_size,
                   [&](const frame_header& header, std::span<const std::byte> payload) {
                       const std::span<const std::byte> pieces[2] = {header, payload};
                       send_all(*transport_, pieces, ec);
                       return !ec;
                   });
}

void message_channel::send_buffered(std::error_code& ec) noexcept {
    const std::span<const std::byte> pieces[1] = {std::span(out_.get(), out_size_)};
    send_all(*transport_, pieces, ec);
    // Sent or not, these frames are done with: after an error the connection is broken.
    out_size_ = 0;
    out_pending_.store(false, std::memory_order_relaxed);
}

void message_channel::flush(std::error_code& ec) noexcept {
    ec.clear();
    if (!out_)
        return;
    std::lock_guard lock(write_mutex_);
    if (out_error_) {
        ec = std::exchange(out_error_, {});
        return;
    }
    if (out_size_ > 0)
        send_buffered(ec);
}

void message_channel::flush_if_idle() noexcept {
    if (!out_pending_.load(std::memory_order_relaxed))
        return;
    std::unique_lock lock(write_mutex_, std::try_to_lock);
    if (lock.owns_lock() && out_size_ > 0) {
        std::error_code ec;
        send_buffered(ec);
    }
}

}  // namespace npipe::detail
