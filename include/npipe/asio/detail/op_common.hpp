// npipe/asio/detail/op_common.hpp: what the composed operations of both platforms share (Linux's
// reactor operations in ops.hpp, Windows' proactor operations in windows/ops.hpp). Not part of
// the public API.
#pragma once

#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <cstddef>
#include <memory>
#include <system_error>
#include <utility>

#include "npipe/asio/detail/pipe_impl.hpp"
#include "npipe/errors.hpp"

namespace npipe::asio::detail {

/// What the composed operations on a pipe keep (their base): the pipe's state, the close()
/// and cancel() generations the operation's I/O started in, and the result it completes with
/// after a post.
struct pipe_op {
    std::shared_ptr<pipe_impl> impl{};
    unsigned close_generation = 0, cancel_generation = 0;
    std::error_code result{};

    /// Notes the generations as the operation's I/O starts.
    void begin_io() noexcept {
        close_generation = impl->close_generation;
        cancel_generation = impl->cancel_generation;
    }

    /// Whether the operation must stop after a wait or its I/O: cancelled through its slot, or
    /// the pipe was closed or cancelled since its I/O started.
    template <class Self>
    bool stopped(const Self& self) const {
        return self.get_cancellation_state().cancelled() != ::asio::cancellation_type::none ||
               impl->close_generation != close_generation ||
               impl->cancel_generation != cancel_generation;
    }

    /// A wait's outcome for the operation: `ec`, or operation_aborted when the wait succeeded
    /// but the operation must stop (a cancel that raced the wait's completion is never lost).
    template <class Self>
    std::error_code after_wait(const Self& self, std::error_code ec) const {
        if (!ec && stopped(self))
            ec = ::asio::error::operation_aborted;
        return ec;
    }
};

/// async_read_message's start: the pipe must be a message pipe open for reading (otherwise `op`
/// posts itself to complete with the error in op.result, and false is returned); a dynamic
/// buffer's size before the message is noted (a failed read gives it back, restore_dynamic),
/// and the generations (pipe_op::begin_io).
template <bool Dynamic, class Op, class Self>
bool begin_read_message(Op& op, Self& self) {
    op.result = check_read(op.impl.get());
    if (!op.result && op.impl->transmission != npipe::transmission_mode::message)
        op.result = npipe::errc::not_supported;
    if (op.result) {
        op.at = decltype(op.at)::posted;
        ::asio::post(std::move(self));
        return false;
    }
    if constexpr (Dynamic)
        op.initial_size = op.storage.size();
    op.begin_io();
    return true;
}

/// A failed message read leaves a dynamic buffer as it found it.
template <bool Dynamic, class Storage>
void restore_dynamic(Storage& storage, std::size_t initial_size, const std::error_code& ec) {
    if constexpr (Dynamic) {
        if (ec && storage.size() > initial_size)
            storage.shrink(storage.size() - initial_size);
    }
}

}  // namespace npipe::asio::detail
