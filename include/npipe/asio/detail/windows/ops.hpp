// npipe/asio/detail/windows/ops.hpp: the composed operations behind npipe::asio::pipe_stream on
// Windows (npipe/asio/detail/ops.hpp selects this file). Not part of the public API.
//
// A proactor's operations: each read or write is one overlapped ReadFile or WriteFile on the
// pipe's stream_handle, completed through Asio's I/O completion port. Message pipes are
// Windows' own (PIPE_TYPE_MESSAGE, read in PIPE_READMODE_MESSAGE): a ReadFile that does not
// take a whole message completes with ERROR_MORE_DATA and the rest follows in the next. The
// completion rules are Linux's: a handler never runs inside the initiating function, and an
// operation re-checks cancellation and close() when its I/O completes.
#pragma once

#include <asio/buffer.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/windows/overlapped_ptr.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

#include "npipe/asio/detail/op_common.hpp"
#include "npipe/asio/detail/windows/pipe_impl.hpp"
#include "npipe/errors.hpp"

namespace npipe::asio::detail {

/// One ReadFile takes at most this much of a message that is skipped.
inline constexpr std::size_t skip_chunk = std::size_t{64} << 10;

/// Starts one overlapped ReadFile into `buffer` (bytes of a message being skipped when
/// `buffer` is the pipe's scratch). Asio completes an empty buffer at once without reading, so
/// an empty buffer is never passed here.
template <class Self>
void start_read(pipe_impl& impl, ::asio::mutable_buffer buffer, Self&& self) {
    impl.socket.async_read_some(buffer, std::forward<Self>(self));
}

/// Starts skipping the rest of a message whose read was cancelled.
template <class Self>
void start_discard(pipe_impl& impl, Self&& self) {
    impl.scratch.resize(skip_chunk);
    start_read(impl, ::asio::buffer(impl.scratch), std::forward<Self>(self));
}

/// The first non-empty buffer of a sequence (a ReadFile or WriteFile takes one).
template <class BufferSequence>
auto first_buffer(const BufferSequence& buffers) {
    using buffer_type =
        std::conditional_t<std::is_convertible_v<decltype(*::asio::buffer_sequence_begin(buffers)),
                                                 ::asio::mutable_buffer>,
                           ::asio::mutable_buffer, ::asio::const_buffer>;
    auto end = ::asio::buffer_sequence_end(buffers);
    for (auto it = ::asio::buffer_sequence_begin(buffers); it != end; ++it) {
        buffer_type b(*it);
        if (b.size() > 0)
            return b;
    }
    return buffer_type();
}

/// async_read_some: one ReadFile. Byte pipes: the bytes as they come. Message pipes: bytes of
/// one message (in byte read mode the caller ignores the boundaries; is_message_complete()
/// says where they are either way).
template <class MutableBufferSequence>
struct read_some_op : pipe_op {
    MutableBufferSequence buffers{};
    enum class phase { start, discarding, reading, posted } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::posted)
            return self.complete(result, 0);
        self.reset_cancellation_state(::asio::enable_total_cancellation());
        if ((result = check_read(impl.get())) || ::asio::buffer_size(buffers) == 0) {
            at = phase::posted;
            return ::asio::post(std::move(self));
        }
        begin_io();
        next(self);
    }

    template <class Self>
    void next(Self& self) {
        auto& p = *impl;
        if (p.discard_message) {
            at = phase::discarding;
            return start_discard(p, std::move(self));
        }
        at = phase::reading;
        start_read(p, first_buffer(buffers), std::move(self));
    }

    template <class Self>
    void operator()(Self& self, std::error_code ec, std::size_t n) {
        bool more = false;
        ec = read_result(ec, more);
        auto& p = *impl;
        if (ec == ::asio::error::eof)
            p.eof = true;
        if (!ec)
            p.message_complete = !more;
        if (at != phase::discarding) {
            // A byte pipe's read of 0 bytes is the peer's half-close (an empty write: the
            // synchronous pipe's shutdown_write()), as .NET and Win32 readers take it too.
            if (!ec && n == 0 && p.transmission == npipe::transmission_mode::byte)
                ec = ::asio::error::eof;
            // Bytes read are the caller's, even when a cancel raced their arrival. A message
            // pipe's empty message is a read of 0 bytes.
            return self.complete(ec, ec ? 0 : n);
        }
        if (ec)
            return self.complete(ec, 0);
        p.discard_message = more;
        // The rest of a message given up: then the read itself.
        if (stopped(self))
            return self.complete(::asio::error::operation_aborted, 0);
        next(self);
    }
};

/// async_read_message: one whole message into a mutable buffer sequence, or appended to a
/// dynamic buffer (Dynamic). A message that does not fit (or is over max_message_size) is read
/// to its end into the pipe's scratch buffer and reported as message_too_large.
template <class Storage, bool Dynamic>
struct read_message_op : pipe_op {
    Storage storage;
    std::size_t initial_size = 0;  // dynamic buffers: the size before this message
    std::size_t n = 0;             // message bytes stored so far
    std::size_t grown = 0;         // dynamic buffers: what the ReadFile in flight may fill
    bool inside = false;           // part of the message has been read
    bool too_large = false;
    enum class phase { start, discarding, reading, skipping, posted } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::posted)
            return finish(self, result);
        if (begin_read_message<Dynamic>(*this, self))
            next(self);
    }

    template <class Self>
    void next(Self& self) {
        auto& p = *impl;
        if (p.discard_message) {
            at = phase::discarding;
            return start_discard(p, std::move(self));
        }
        ::asio::mutable_buffer target = room();
        if (target.size() == 0) {
            // No room left (or none at all): what comes is read to the message's end.
            at = phase::skipping;
            p.scratch.resize(skip_chunk);
            return start_read(p, ::asio::buffer(p.scratch), std::move(self));
        }
        at = phase::reading;
        start_read(p, target, std::move(self));
    }

    // Where the next bytes of the message go: empty when the message has no room left.
    ::asio::mutable_buffer room() {
        if (too_large || n >= impl->max_message_size)
            return {};
        std::size_t limit = impl->max_message_size - n;
        if constexpr (Dynamic) {
            std::size_t chunk = std::min({limit, storage.max_size() - storage.size(), skip_chunk});
            if (chunk == 0)
                return {};
            try {
                storage.grow(chunk);
            } catch (...) {
                return {};  // over the buffer's limit: the message does not fit
            }
            grown = chunk;
            return storage.data(initial_size + n, chunk);
        } else {
            std::size_t skip = n;
            auto end = ::asio::buffer_sequence_end(storage);
            for (auto it = ::asio::buffer_sequence_begin(storage); it != end; ++it) {
                ::asio::mutable_buffer b(*it);
                if (skip >= b.size()) {
                    skip -= b.size();
                    continue;
                }
                b += skip;
                return ::asio::buffer(b, limit);
            }
            return {};
        }
    }

    template <class Self>
    void operator()(Self& self, std::error_code ec, std::size_t got) {
        bool more = false;
        ec = read_result(ec, more);
        auto& p = *impl;
        if (at == phase::discarding) {
            if (ec)
                return finish(self, ec);
            p.discard_message = more;
            if (stopped(self))
                return finish(self, ::asio::error::operation_aborted);
            return next(self);
        }
        if constexpr (Dynamic) {
            if (grown > 0) {
                storage.shrink(grown - (ec ? 0 : got));
                grown = 0;
            }
        }
        if (!ec) {
            if (at == phase::reading)
                n += got;
            else if (got > 0 || more)
                too_large = true;
        }
        if (ec) {
            if (ec == ::asio::error::eof) {
                p.eof = true;
                if (inside)
                    ec = npipe::errc::broken_pipe;  // the stream ended inside a message
            } else if (inside) {
                // Cancelled (or failed) inside a message: the next read skips its rest.
                p.discard_message = true;
            }
            return finish(self, ec);
        }
        inside = more;
        p.message_complete = !more;
        if (!more)
            return finish(self, too_large ? std::error_code(npipe::errc::message_too_large)
                                          : std::error_code());
        if (stopped(self)) {
            p.discard_message = true;
            return finish(self, ::asio::error::operation_aborted);
        }
        next(self);
    }

    template <class Self>
    void finish(Self& self, const std::error_code& ec) {
        restore_dynamic<Dynamic>(storage, initial_size, ec);
        self.complete(ec, ec ? 0 : n);
    }
};

/// async_write_some (byte pipes: one WriteFile of the first buffer, possibly short; message
/// pipes: one message) and async_write_message (message pipes only): a message is one
/// WriteFile of the buffers' concatenation (gathered in the pipe's scratch buffer when there
/// are several), exactly what a Win32 or .NET reader takes as one message.
template <class ConstBufferSequence>
struct write_op : pipe_op {
    ConstBufferSequence buffers{};
    bool message_only = false;  // async_write_message: byte pipes are refused
    std::size_t total = 0;
    bool posted = false;

    template <class Self>
    void operator()(Self& self) {
        if (posted)
            return self.complete(result, result ? 0 : total);
        result = check_write(impl.get());
        if (!result && message_only && impl->transmission != npipe::transmission_mode::message)
            result = npipe::errc::not_supported;
        total = ::asio::buffer_size(buffers);
        auto& p = *impl;
        if (!result && p.transmission == npipe::transmission_mode::byte) {
            self.reset_cancellation_state(::asio::enable_total_cancellation());
            if (total > 0)
                return p.socket.async_write_some(first_buffer(buffers), std::move(self));
        } else if (!result && total > p.max_message_size) {
            result = npipe::errc::message_too_large;
        } else if (!result && total == 0) {
            return write_empty_message(self);
        } else if (!result) {
            auto one = first_buffer(buffers);
            if (one.size() == total)
                return p.socket.async_write_some(one, std::move(self));
            try {
                p.scratch.resize(total);
            } catch (const std::bad_alloc&) {
                result = std::make_error_code(std::errc::not_enough_memory);
            }
            if (!result) {
                ::asio::buffer_copy(::asio::buffer(p.scratch), buffers);
                return p.socket.async_write_some(::asio::buffer(p.scratch), std::move(self));
            }
        }
        posted = true;
        ::asio::post(std::move(self));
    }

    template <class Self>
    void operator()(Self& self, std::error_code ec, std::size_t n) {
        ec = write_result(ec);
        if (ec == npipe::errc::broken_pipe)
            impl->write_broken = true;
        if (impl->transmission == npipe::transmission_mode::byte)
            return self.complete(ec, ec ? 0 : n);
        self.complete(ec, ec ? 0 : total);
    }

    // Asio completes an empty buffer without writing, but an empty message is a message.
    template <class Self>
    void write_empty_message(Self& self) {
        HANDLE h = impl->socket.native_handle();
        ::asio::windows::overlapped_ptr op(impl->socket.get_executor(), std::move(self));
        static const char nothing = 0;
        if (::WriteFile(h, &nothing, 0, nullptr, op.get()) || ::GetLastError() == ERROR_IO_PENDING)
            op.release();
        else
            op.complete(std::error_code(static_cast<int>(::GetLastError()), std::system_category()),
                        0);
    }
};

/// async_wait: Windows pipes have no readiness. wait_read is a ReadFile of 0 bytes, which
/// completes when the pipe has data (or its end); wait_write and wait_error complete at once (a
/// proactor's write waits inside the WriteFile). Total cancellation, as on Linux.
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
        if (!impl || !impl->is_open())
            result = npipe::errc::not_connected;
        if (result || type != ::asio::socket_base::wait_read)
            return ::asio::post(std::move(self));
        self.reset_cancellation_state(::asio::enable_total_cancellation());
        HANDLE h = impl->socket.native_handle();
        auto slot = self.get_cancellation_state().slot();
        ::asio::windows::overlapped_ptr op(impl->socket.get_executor(), std::move(self));
        OVERLAPPED* overlapped = op.get();
        static char nothing;
        if (::ReadFile(h, &nothing, 0, nullptr, overlapped) ||
            ::GetLastError() == ERROR_IO_PENDING) {
            op.release();
            // Per-operation cancellation takes back this ReadFile alone. Asio clears the slot
            // when the operation resumes, before the OVERLAPPED could be reused.
            if (slot.is_connected())
                slot.assign(
                    [h, overlapped](::asio::cancellation_type) { ::CancelIoEx(h, overlapped); });
        } else
            op.complete(std::error_code(static_cast<int>(::GetLastError()), std::system_category()),
                        0);
    }
    template <class Self>
    void operator()(Self& self, std::error_code ec, std::size_t) {
        bool more = false;
        ec = read_result(ec, more);
        if (ec == ::asio::error::eof)
            ec.clear();  // readable: the read will say so
        self.complete(ec);
    }
};

}  // namespace npipe::asio::detail
