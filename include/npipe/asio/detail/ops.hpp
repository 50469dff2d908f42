// npipe/asio/detail/ops.hpp: the composed operations behind npipe::asio::pipe_stream. Not part of
// the public API.
//
// Every operation is an ::asio::async_compose state machine holding a shared_ptr to the pipe's
// state, so it may outlive the pipe object. Two rules keep the completion guarantees Asio users
// rely on: a handler is never called from inside the initiating function (an operation that can
// finish at once posts itself first), and an operation that waits re-checks cancellation and
// close() after every wait, so a cancel that races a completed wait is never lost.
#pragma once

#ifdef _WIN32
// Windows: a proactor over overlapped pipe handles (npipe/asio/detail/windows/).
#include "npipe/asio/detail/windows/ops.hpp"
#else

#include <asio/associated_cancellation_slot.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>

#include <array>
#include <cstring>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "npipe/asio/detail/op_common.hpp"
#include "npipe/asio/detail/pipe_impl.hpp"
#include "npipe/errors.hpp"

namespace npipe::asio::detail {

/// Completes with fixed arguments, after a post (never inside the initiating function).
template <class... Args>
struct immediate_op {
    std::tuple<std::error_code, Args...> result{};
    bool posted = false;

    template <class Self>
    void operator()(Self& self) {
        if (!posted) {
            posted = true;
            ::asio::post(std::move(self));
            return;
        }
        std::apply([&](auto&&... a) { self.complete(std::move(a)...); }, std::move(result));
    }
};

/// A const buffer sequence as a flat list (inline for up to four buffers), for sendmsg.
class flat_buffers {
  public:
    template <class ConstBufferSequence>
    explicit flat_buffers(const ConstBufferSequence& buffers) {
        auto end = ::asio::buffer_sequence_end(buffers);
        for (auto it = ::asio::buffer_sequence_begin(buffers); it != end; ++it) {
            ::asio::const_buffer b(*it);
            total_ += b.size();
            if (heap_.empty() && count_ < inline_.size()) {
                inline_[count_++] = b;
                continue;
            }
            if (heap_.empty())
                heap_.assign(inline_.begin(), inline_.begin() + count_);
            heap_.push_back(b);
            ++count_;
        }
    }
    std::span<const ::asio::const_buffer> span() const noexcept {
        return {heap_.empty() ? inline_.data() : heap_.data(), count_};
    }
    std::size_t total() const noexcept { return total_; }

  private:
    std::array< ::asio::const_buffer, 4> inline_{};
    std::vector< ::asio::const_buffer> heap_;
    std::size_t count_ = 0;
    std::size_t total_ = 0;
};

/// A payload_sink over a mutable buffer sequence, filled from `filled` on.
template <class MutableBufferSequence>
class buffers_sink final : public payload_sink {
  public:
    buffers_sink(const MutableBufferSequence& buffers, std::size_t filled) noexcept
        : buffers_(buffers), size_(::asio::buffer_size(buffers)), filled_(filled) {}
    std::size_t room() const noexcept override { return size_ - filled_; }
    bool put(std::span<const std::byte> bytes) noexcept override {
        std::size_t skip = filled_;
        auto end = ::asio::buffer_sequence_end(buffers_);
        for (auto it = ::asio::buffer_sequence_begin(buffers_); it != end && !bytes.empty(); ++it) {
            ::asio::mutable_buffer b(*it);
            if (skip >= b.size()) {
                skip -= b.size();
                continue;
            }
            std::size_t n = std::min(b.size() - skip, bytes.size());
            std::memcpy(static_cast<char*>(b.data()) + skip, bytes.data(), n);
            bytes = bytes.subspan(n);
            filled_ += n;
            skip = 0;
        }
        return true;
    }

  private:
    const MutableBufferSequence& buffers_;
    std::size_t size_;
    std::size_t filled_;
};

/// Resumes a composed operation that yielded (io_step::yield) once the handlers already queued
/// on `ex` have run, as if its wait had completed.
template <class Executor, class Self>
void continue_later(const Executor& ex, Self&& self) {
    ::asio::post(ex, [s = std::forward<Self>(self)]() mutable { s(std::error_code{}); });
}

/// After a read's non-blocking step: starts what the step asked for and returns true
/// (would_block: a wait for the socket to become readable; yield: a turn after the handlers
/// already queued), or returns false when the step finished the read.
template <class Op, class Self>
bool wait_after_read_step(Op& op, io_step s, Self& self) {
    if (s == io_step::done)
        return false;
    op.at = decltype(op.at)::waiting;
    auto& socket = op.impl->socket;  // `op` lives in `self`, which moves below
    if (s == io_step::would_block)
        socket.async_wait(::asio::socket_base::wait_read, std::move(self));
    else
        continue_later(socket.get_executor(), std::move(self));
    return true;
}

/// A payload_sink appending to a DynamicBuffer_v2.
template <class DynamicBuffer>
class dynamic_sink final : public payload_sink {
  public:
    explicit dynamic_sink(DynamicBuffer& buffer) noexcept : buffer_(buffer) {}
    std::size_t room() const noexcept override { return buffer_.max_size() - buffer_.size(); }
    bool put(std::span<const std::byte> bytes) noexcept override {
        try {
            std::size_t at = buffer_.size();
            buffer_.grow(bytes.size());
            ::asio::buffer_copy(buffer_.data(at, bytes.size()),
                                ::asio::const_buffer(bytes.data(), bytes.size()));
            return true;
        } catch (...) {
            return false;
        }
    }

  private:
    DynamicBuffer& buffer_;
};

/// async_read_some: bytes as they come on a byte pipe; on a message pipe, payload bytes as a
/// stream (byte read mode) or bytes of one message (message read mode).
template <class MutableBufferSequence>
struct read_some_op : pipe_op {
    MutableBufferSequence buffers{};
    read_kind kind = read_kind::bytes;
    read_progress progress{};
    enum class phase { start, waiting, posted } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::posted)
            return self.complete(result, result ? 0 : progress.n);
        self.reset_cancellation_state(::asio::enable_total_cancellation());
        if ((result = check_read(impl.get())) || ::asio::buffer_size(buffers) == 0)
            return post(self);
        kind = impl->read_mode == npipe::transmission_mode::message ? read_kind::message_part
                                                                    : read_kind::bytes;
        begin_io();
        step(self);
    }

    // The pipe became readable, or the wait was cancelled.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        ec = after_wait(self, ec);
        if (ec) {
            // Bytes already delivered are the caller's: a cancelled read returns them.
            if (progress.n > 0)
                return self.complete(std::error_code(), progress.n);
            return self.complete(ec, 0);
        }
        step(self);
    }

    template <class Self>
    void step(Self& self) {
        std::error_code ec;
        io_step s;
        if (impl->transmission == npipe::transmission_mode::byte) {
            s = impl->read_bytes(first_buffer(), progress.n, ec);
        } else {
            buffers_sink<MutableBufferSequence> sink(buffers, progress.n);
            s = impl->read_message(sink, kind, progress, ec);
        }
        if (wait_after_read_step(*this, s, self))
            return;
        if (at == phase::start) {
            result = ec;
            return post(self);
        }
        self.complete(ec, ec ? 0 : progress.n);
    }

    std::span<std::byte> first_buffer() const noexcept {
        auto end = ::asio::buffer_sequence_end(buffers);
        for (auto it = ::asio::buffer_sequence_begin(buffers); it != end; ++it) {
            ::asio::mutable_buffer b(*it);
            if (b.size() > 0)
                return {static_cast<std::byte*>(b.data()), b.size()};
        }
        return {};
    }

    template <class Self>
    void post(Self& self) {
        at = phase::posted;
        ::asio::post(std::move(self));
    }
};

/// async_read_message: one whole message into a mutable buffer sequence (Sink = buffers_sink)
/// or appended to a dynamic buffer (Sink = dynamic_sink).
template <class Storage, bool Dynamic>
struct read_message_op : pipe_op {
    Storage storage;
    std::size_t initial_size = 0;  // dynamic buffers: the size before this message
    read_progress progress{};
    enum class phase { start, waiting, posted } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::posted)
            return finish(self, result);
        if (begin_read_message<Dynamic>(*this, self))
            step(self);
    }

    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        ec = after_wait(self, ec);
        if (ec) {
            impl->abandon_read(progress);
            return finish(self, ec);
        }
        step(self);
    }

    template <class Self>
    void step(Self& self) {
        std::error_code ec;
        io_step s;
        if constexpr (Dynamic) {
            dynamic_sink<Storage> sink(storage);
            s = impl->read_message(sink, read_kind::whole_message, progress, ec);
        } else {
            buffers_sink<Storage> sink(storage, progress.n);
            s = impl->read_message(sink, read_kind::whole_message, progress, ec);
        }
        if (wait_after_read_step(*this, s, self))
            return;
        if (at == phase::start) {
            result = ec;
            at = phase::posted;
            return ::asio::post(std::move(self));
        }
        finish(self, ec);
    }

    template <class Self>
    void finish(Self& self, const std::error_code& ec) {
        restore_dynamic<Dynamic>(storage, initial_size, ec);
        self.complete(ec, ec ? 0 : progress.n);
    }
};

/// async_write_some (byte pipes: some bytes; message pipes: one message) and
/// async_write_message (message pipes only).
template <class ConstBufferSequence>
struct write_op : pipe_op {
    ConstBufferSequence buffers{};
    bool message_only = false;  // async_write_message: byte pipes are refused
    write_progress progress{};
    std::size_t total = 0;
    enum class phase { start, waiting, posted } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::posted)
            return self.complete(result, result ? 0 : total);
        result = check_write(impl.get());
        if (!result && message_only && impl->transmission != npipe::transmission_mode::message)
            result = npipe::errc::not_supported;
        if (result)
            return post(self);
        total = ::asio::buffer_size(buffers);
        if (impl->transmission == npipe::transmission_mode::byte) {
            self.reset_cancellation_state(::asio::enable_total_cancellation());
            if (total == 0)
                return post(self);
        } else if (total > impl->max_message_size) {
            result = npipe::errc::message_too_large;
            return post(self);
        }
        begin_io();
        step(self);
    }

    // The pipe became writable, or the wait was cancelled.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        ec = after_wait(self, ec);
        if (ec) {
            impl->abandon_write(progress);
            return self.complete(ec, 0);
        }
        step(self);
    }

    template <class Self>
    void step(Self& self) {
        flat_buffers flat(buffers);
        std::error_code ec;
        io_step s;
        if (impl->transmission == npipe::transmission_mode::byte)
            s = impl->write_bytes(flat.span(), total, ec);  // a short write: total is what went
        else
            s = impl->write_message(flat.span(), total, progress, ec);
        if (s == io_step::would_block) {
            at = phase::waiting;
            impl->async_wait_writable(std::move(self));
            return;
        }
        if (at == phase::start) {
            result = ec;
            return post(self);
        }
        self.complete(ec, ec ? 0 : total);
    }

    template <class Self>
    void post(Self& self) {
        at = phase::posted;
        ::asio::post(std::move(self));
    }
};

/// async_wait: the reactor's wait on the connection.
struct wait_op {
    std::shared_ptr<pipe_impl> impl{};
    ::asio::socket_base::wait_type type = ::asio::socket_base::wait_read;
    bool started = false;
    std::error_code result{};

    template <class Self>
    void operator()(Self& self) {
        if (started)
            return self.complete(result);
        started = true;
        if (!impl || !impl->is_open()) {
            result = npipe::errc::not_connected;
            return ::asio::post(std::move(self));
        }
        self.reset_cancellation_state(::asio::enable_total_cancellation());
        if (type == ::asio::socket_base::wait_read && impl->data_waiting_unseen())
            return ::asio::post(std::move(self));  // result: success
        impl->socket.async_wait(type, std::move(self));
    }
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        self.complete(ec);
    }
};

}  // namespace npipe::asio::detail

#endif  // _WIN32
