#include "framing/message_channel.hpp"

#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "npipe/errors.hpp"

namespace npipe::detail {

namespace {

/// Each thread's receive buffer, lent to the channel it is reading. A record must be received
/// whole into a buffer of the transport's receive_size() (64 KiB), but it is needed only from
/// the receive until its bytes are decoded; most reads decode everything they receive, so one
/// buffer per reading thread serves every pipe it reads, instead of one per pipe. A channel left
/// with bytes to decode keeps the buffer (the thread allocates another at its next receive) and
/// hands it back when drained.
struct receive_buffer {
    std::unique_ptr<std::byte[]> data;
    std::size_t capacity = 0;
};
thread_local receive_buffer thread_buffer;

}  // namespace

message_channel::message_channel(std::unique_ptr<message_transport> transport,
                                 std::size_t max_message_size)
    : transport_(std::move(transport)), decoder_(max_message_size) {}

std::size_t message_channel::receive(std::error_code& ec) noexcept {
    release_if_drained();
    const std::size_t need = transport_->receive_size();
    if (!held_) {
        auto& mine = thread_buffer;
        if (mine.capacity < need) {
            mine.data.reset();
            mine.data.reset(new (std::nothrow) std::byte[need]);
            mine.capacity = mine.data ? need : 0;
            if (!mine.data) {
                ec = std::make_error_code(std::errc::not_enough_memory);
                return 0;
            }
        }
        held_ = std::move(mine.data);
        held_capacity_ = std::exchange(mine.capacity, 0);
    }
    begin_ = 0;
    end_ = transport_->receive(std::span(held_.get(), need), ec);
    if (ec)
        end_ = 0;
    return end_;
}

void message_channel::release_if_drained() noexcept {
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

std::size_t message_channel::read(std::span<std::byte> out, transmission_mode read_mode,
                                  std::error_code& ec) noexcept {
    std::lock_guard lock(read_mutex_);
    struct release_on_return {
        message_channel& channel;
        ~release_on_return() { channel.release_if_drained(); }
    } release{*this};
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
        auto r = decoder_.next(std::span<const std::byte>(held_.get() + begin_, end_ - begin_),
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
        if (out_pending_.load(std::memory_order_relaxed)) {
            // A reader about to wait for an answer must not sit on the request that provokes
            // it. Only when no other thread is writing: waiting behind a send that blocks
            // until the peer reads could deadlock with a peer that waits for us to read.
            std::unique_lock write_lock(write_mutex_, std::try_to_lock);
            if (write_lock.owns_lock() && out_size_ > 0) {
                std::error_code write_ec;
                send_buffered(write_ec);
                if (write_ec)
                    out_error_ = write_ec;  // the writer's next call reports it
            }
        }
        if (spin_.count() > 0)
            spin_until_readable();
        std::size_t got = receive(ec);
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
    }
}

void message_channel::write(std::span<const std::byte> message, std::error_code& ec) noexcept {
    ec.clear();
    if (message.size() > decoder_.max_message_size()) {
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
                       transport_->send(pieces, ec);
                       return !ec;
                   });
}

void message_channel::send_buffered(std::error_code& ec) noexcept {
    const std::span<const std::byte> pieces[1] = {std::span(out_.get(), out_size_)};
    transport_->send(pieces, ec);
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

void message_channel::spin_until_readable() noexcept {
    // A one-byte peek never consumes (a record stays whole on SOCK_SEQPACKET); data, end of
    // stream or an error all end the spin, and the blocking receive then reports them.
    const auto until = std::chrono::steady_clock::now() + spin_;
    std::byte probe;
    do {
        if (::recv(spin_fd_, &probe, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 ||
            (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return;
        ::sched_yield();  // the peer may share our CPU (its affinity is not ours to see)
    } while (std::chrono::steady_clock::now() < until);
}

}  // namespace npipe::detail
