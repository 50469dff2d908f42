// npipe/asio/pipe_stream.hpp: a connected pipe for Asio (the async counterpart of
// npipe::pipe_stream). Part of the npipe::asio CMake target; needs standalone Asio (libasio-dev).
//
// Inside namespace npipe, `asio::` names this namespace: write `::asio::` for Asio itself.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/execution_context.hpp>
#include <asio/socket_base.hpp>

#include <memory>
#include <string>
#include <system_error>
#include <type_traits>

#include "npipe/asio/detail/ops.hpp"
#include "npipe/asio/detail/pipe_impl.hpp"
#include "npipe/options.hpp"
#include "npipe/pipe_stream.hpp"

namespace npipe::asio {

class named_pipe_acceptor;
namespace detail {
template <class PipeExecutor, class Pipe>
struct accept_op;
}

/// One end of a connected pipe, driven by an Asio executor: what named_pipe_acceptor accepts and
/// what named_pipe_client becomes once connected. It models Asio's AsyncReadStream and
/// AsyncWriteStream, so ::asio::async_read, ::asio::async_write and ::asio::async_read_until
/// work on it, and every operation takes any completion token (a callback, ::asio::use_awaitable,
/// ::asio::use_future, ::asio::deferred, ...) and honours per-operation cancellation slots.
///
/// The peer may be npipe (synchronous or asynchronous), .NET or Mono: byte pipes carry the raw
/// bytes, as .NET does. Message pipes (transmission_mode() == message) carry npipe's message
/// frames (docs/protocol.md); use async_read_message / async_write_message on them.
///
/// Like every Asio I/O object, a pipe_stream is not safe for concurrent use: call its functions
/// from one thread at a time (its executor's thread, or a strand). At most one read and one
/// write may be pending at a time. Destroying or closing the pipe completes pending operations
/// with ::asio::error::operation_aborted; it is never a crash or a hang.
class pipe_stream {
  public:
    using executor_type = ::asio::any_io_executor;
    using native_handle_type = npipe::native_handle_type;

    /// A pipe with no connection, on `ex` (or on the context's executor).
    explicit pipe_stream(const executor_type& ex) : ex_(ex) {}
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, ::asio::execution_context&>
    explicit pipe_stream(ExecutionContext& context) : pipe_stream(context.get_executor()) {}

    /// Moving transfers the connection and any pending operations stay with it; the moved-from
    /// pipe keeps its executor and is not connected.
    pipe_stream(pipe_stream&& other) noexcept = default;
    pipe_stream& operator=(pipe_stream&& other) noexcept {
        if (this != &other) {
            close();
            ex_ = other.ex_;
            impl_ = std::move(other.impl_);
        }
        return *this;
    }
    pipe_stream(const pipe_stream&) = delete;
    pipe_stream& operator=(const pipe_stream&) = delete;
    /// Closes the pipe (pending operations complete with operation_aborted).
    virtual ~pipe_stream() { close(); }

    executor_type get_executor() const noexcept { return ex_; }

    /// Reads some bytes: completes with (error_code, bytes read) once at least one byte is
    /// available, with ::asio::error::eof at the end of the stream (the peer closed or shut down
    /// its write side). Byte pipes: the socket's bytes as they come. Message pipes: in byte read
    /// mode, payload bytes of successive messages; in message read mode (read_mode()), bytes of
    /// one message only, completing when the buffer is full or the message complete
    /// (is_message_complete()). Errors: npipe::errc::not_connected, wrong_direction (an `out`
    /// pipe), message_too_large / broken_pipe / protocol_error on message pipes (see
    /// npipe::pipe_stream::read). Cancelling a read that already delivered bytes of a message
    /// completes it with those bytes. Supports terminal, partial and total cancellation.
    template <class MutableBufferSequence, class CompletionToken>
    auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code, std::size_t)>(
            detail::read_some_op<MutableBufferSequence>{{impl_}, buffers}, token, ex_);
    }

    /// Writes some bytes: completes with (error_code, bytes written). Byte pipes: the socket's
    /// write (possibly short: ::asio::async_write loops). Message pipes: the buffers are sent
    /// as one message, all of them; but ::asio::async_write hands a write_some at most 64 KiB,
    /// so use async_write_message for messages. A peer that has gone away gives
    /// npipe::errc::broken_pipe (never SIGPIPE), and every later write fails the same way.
    template <class ConstBufferSequence, class CompletionToken>
    auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code, std::size_t)>(
            detail::write_op<ConstBufferSequence>{{impl_}, buffers, false}, token, ex_);
    }

    /// Message pipes: reads one whole message into `buffers` and completes with (error_code,
    /// message size). A message larger than the buffers is skipped and reported as
    /// npipe::errc::message_too_large (as is one over pipe_options::max_message_size); the next
    /// read gets the message after it. ::asio::error::eof at the end of the stream; broken_pipe
    /// when the peer closed inside a message; not_supported on a byte pipe. Cancelling a read
    /// that has received part of a message discards that message (the stream stays in step);
    /// cancelling one that is waiting for a message has no other effect. Terminal cancellation.
    template <class MutableBufferSequence, class CompletionToken>
    requires ::asio::is_mutable_buffer_sequence<MutableBufferSequence>::value auto
    async_read_message(const MutableBufferSequence& buffers, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code, std::size_t)>(
            detail::read_message_op<MutableBufferSequence, false>{{impl_}, buffers}, token, ex_);
    }

    /// As above, appending the message to a dynamic buffer (::asio::dynamic_buffer(string or
    /// vector)), which grows as the message arrives: nothing is allocated while the pipe waits.
    /// A message that does not fit in the buffer's max_size() is skipped with
    /// message_too_large; on any error the buffer is left as it was.
    template <class DynamicBuffer, class CompletionToken>
    requires ::asio::is_dynamic_buffer_v2<DynamicBuffer>::value auto async_read_message(
        DynamicBuffer buffer, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code, std::size_t)>(
            detail::read_message_op<DynamicBuffer, true>{{impl_}, std::move(buffer)}, token, ex_);
    }

    /// Message pipes: sends the concatenation of `buffers` as one message and completes with
    /// (error_code, message size). Over pipe_options::max_message_size it fails with
    /// npipe::errc::message_too_large and sends nothing; not_supported on a byte pipe;
    /// broken_pipe when the peer has gone. A write cancelled before any of the message went out
    /// has no effect; one cancelled halfway shuts the write side down (the peer sees a torn
    /// message, reported as broken_pipe, never a corrupt one). Terminal cancellation.
    template <class ConstBufferSequence, class CompletionToken>
    auto async_write_message(const ConstBufferSequence& buffers, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code, std::size_t)>(
            detail::write_op<ConstBufferSequence>{{impl_}, buffers, true}, token, ex_);
    }

    /// Waits until the socket is readable, writable or has an error (::asio::socket_base::
    /// wait_read / wait_write / wait_error), without reading: a server can hold thousands of
    /// idle pipes with no buffer each and allocate one only when bytes arrive (available()).
    /// On message pipes a readable socket does not always mean a whole message. On a
    /// shared-memory pipe (pipe_options::shared_memory) wait_read waits for bytes in the ring or
    /// the end of the stream, and wait_write completes at once (a write waits for room itself).
    template <class CompletionToken>
    auto async_wait(::asio::socket_base::wait_type type, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code)>(
            detail::wait_op{impl_, type}, token, ex_);
    }

    /// Byte pipes: the number of bytes that can be read without waiting (on a shared-memory
    /// pipe, the bytes in its ring).
    std::size_t available() const;
    std::size_t available(std::error_code& ec) const noexcept;

    /// Whether the pipe has a connection (accepted, or connected and not closed).
    bool is_open() const noexcept { return impl_ && impl_->is_open(); }
    bool is_connected() const noexcept { return is_open(); }

    /// Cancels the pending operations, which complete with ::asio::error::operation_aborted
    /// (message reads and writes cancelled inside a message: see their documentation); the
    /// pipe stays usable.
    void cancel() noexcept {
        if (impl_)
            impl_->cancel();
    }

    /// Closes the pipe: the peer sees the end of the stream, pending operations complete with
    /// operation_aborted, and an accepted pipe gives its max_instances slot back. Idempotent.
    void close() noexcept {
        if (impl_)
            impl_->close();
    }

    /// Ends our side of the data flow: the peer reads end of stream after what was written,
    /// and can still send to us.
    void shutdown_write();

    /// The pipe's type: the server's choice (a client learns it when it connects).
    npipe::transmission_mode transmission_mode() const;

    /// How async_read_some splits message-pipe data: message read mode for accepted message
    /// pipes, byte read mode for clients (as on Windows and in npipe::pipe_stream).
    npipe::transmission_mode read_mode() const noexcept;
    void set_read_mode(npipe::transmission_mode mode);

    /// Message pipes: whether the last read ended at a message boundary (true on byte pipes).
    bool is_message_complete() const noexcept { return !impl_ || impl_->is_message_complete(); }

    /// Whether a read has reached the end of the stream (message pipes; on a byte pipe a read
    /// completes with ::asio::error::eof then).
    bool end_of_stream() const noexcept { return impl_ && impl_->end_of_stream(); }

    /// The connected peer's credentials (SO_PEERCRED); npipe::errc::not_connected without one.
    peer_credentials get_peer_credentials() const;

    /// The connection's descriptor (-1 when there is none); still owned by the pipe.
    native_handle_type native_handle() const noexcept;

    /// The name the pipe was opened with ("" for a pipe that never connected).
    const std::string& pipe_name() const noexcept;

  protected:
    pipe_stream(const executor_type& ex, std::shared_ptr<detail::pipe_impl> impl) noexcept
        : ex_(ex), impl_(std::move(impl)) {}

    std::shared_ptr<detail::pipe_impl>& impl() noexcept { return impl_; }
    const std::shared_ptr<detail::pipe_impl>& impl() const noexcept { return impl_; }

  private:
    template <class PipeExecutor, class Pipe>
    friend struct detail::accept_op;

    executor_type ex_;
    std::shared_ptr<detail::pipe_impl> impl_;
};

}  // namespace npipe::asio
