// npipe/asio/detail/windows/pipe_impl.hpp: the state behind an asynchronous pipe on Windows,
// shared (std::shared_ptr) between the pipe object and its pending operations, as on Linux
// (npipe/asio/detail/pipe_impl.hpp selects this file). Windows has no readiness for pipes: Asio
// runs a proactor there (an I/O completion port), so the pipe's overlapped handle is an
// ::asio::windows::stream_handle and every read and write is an overlapped ReadFile/WriteFile.
// Not part of the public API.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/steady_timer.hpp>
#include <asio/windows/object_handle.hpp>
#include <asio/windows/stream_handle.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "npipe/options.hpp"

namespace npipe::detail {
class transport;
}  // namespace npipe::detail

namespace npipe::asio::detail {

/// A Win32 waitable object (an event) for Asio, with the reactor's wait signature too, so the
/// composed operations shared with Linux (accept_op, connect_op) wait on it unchanged: a wait
/// for readability is a wait for the object to be signalled. Asio 1.22's object_handle has no
/// per-operation cancellation, so each wait waits on a handle of its own, which its
/// cancellation slot cancels alone; cancel() and close() end every wait.
class waitable_handle {
  public:
    explicit waitable_handle(const ::asio::any_io_executor& ex) : object_(ex) {}

    /// Takes ownership of `object`.
    void assign(HANDLE object, std::error_code& ec) { object_.assign(object, ec); }
    bool is_open() const noexcept { return object_.is_open(); }
    ::asio::any_io_executor get_executor() noexcept { return object_.get_executor(); }
    void cancel(std::error_code& ec) {
        ec.clear();
        for (auto& w : waits_)
            if (auto wait = w.lock())
                wait->cancel(ec);
        waits_.clear();
    }
    void close(std::error_code& ec) {
        cancel(ec);
        object_.close(ec);
    }

    template <class WaitToken>
    auto async_wait(::asio::socket_base::wait_type, WaitToken&& token) {
        return ::asio::async_initiate<WaitToken, void(std::error_code)>(
            [this](auto handler) { start_wait(std::move(handler)); }, token);
    }

  private:
    template <class Handler>
    void start_wait(Handler handler) {
        auto ex = ::asio::get_associated_executor(handler, object_.get_executor());
        std::error_code ec;
        auto wait = std::make_shared<::asio::windows::object_handle>(object_.get_executor());
        HANDLE own = ::GetCurrentProcess(), copy = nullptr;
        if (!object_.is_open())
            ec = ::asio::error::bad_descriptor;
        else if (!::DuplicateHandle(own, object_.native_handle(), own, &copy, SYNCHRONIZE, FALSE,
                                    0))
            ec.assign(static_cast<int>(::GetLastError()), std::system_category());
        else
            wait->assign(copy, ec);
        if (ec) {
            if (copy && !wait->is_open())
                ::CloseHandle(copy);
            ::asio::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
            return;
        }
        std::erase_if(waits_, [](const auto& w) { return w.expired(); });
        waits_.push_back(wait);
        auto slot = ::asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected())
            slot.assign([w = std::weak_ptr<::asio::windows::object_handle>(wait)](
                            ::asio::cancellation_type) {
                if (auto o = w.lock()) {
                    std::error_code ignored;
                    o->cancel(ignored);
                }
            });
        wait->async_wait(
            ::asio::bind_executor(ex, [wait, h = std::move(handler)](std::error_code ec) mutable {
                auto slot = ::asio::get_associated_cancellation_slot(h);
                if (slot.is_connected())
                    slot.clear();
                std::move(h)(ec);
            }));
    }

    ::asio::windows::object_handle object_;
    std::vector<std::weak_ptr<::asio::windows::object_handle>> waits_;
};

class instance_pool;  // the max_instances quota of an acceptor (src/asio/instance_pool.hpp)

/// async_connect's waiting gear: a backoff timer. The pipe namespace cannot be watched for a
/// name to appear, so `watch` is never opened (the backoff alone paces the retries).
struct connector {
    explicit connector(const ::asio::any_io_executor& ex) : timer(ex), watch(ex) {}
    ::asio::steady_timer timer;
    waitable_handle watch;
};

struct pipe_impl {
    explicit pipe_impl(const ::asio::any_io_executor& ex);
    ~pipe_impl();
    pipe_impl(const pipe_impl&) = delete;
    pipe_impl& operator=(const pipe_impl&) = delete;

    /// The connection's handle for Asio's I/O completion port: a duplicate of the transport's
    /// (named `socket` as on Linux, for the composed operations both share). The transport
    /// keeps the original, for peer credentials and native_handle().
    ::asio::windows::stream_handle socket;
    std::shared_ptr<npipe::detail::transport> transport;  ///< while connected (kept once closed)
    std::string name;                                     ///< the pipe name, as given
    pipe_direction direction = pipe_direction::in_out;
    npipe::transmission_mode transmission = npipe::transmission_mode::byte;
    bool transmission_known = true;  ///< false for a client until it connects
    npipe::transmission_mode read_mode = npipe::transmission_mode::byte;
    std::size_t max_message_size = pipe_options::default_max_message_size;
    bool write_broken = false;  ///< a write found the peer gone: writes fail
    /// Bumped by close() and cancel(): an operation that sees a change when its I/O completes
    /// gives up, even when the I/O had succeeded (cancel racing completion).
    unsigned close_generation = 0;
    unsigned cancel_generation = 0;
    /// Message pipes: whether the last read ended at a message boundary (ReadFile did not say
    /// ERROR_MORE_DATA), and whether a read has met the end of the stream.
    bool message_complete = true;
    bool eof = false;
    /// A message read was cancelled inside a message: the next read skips the rest of it.
    bool discard_message = false;
    std::vector<std::byte> scratch;         ///< skipped message bytes; a gathered message to write
    std::shared_ptr<instance_pool> pool;    ///< accepted pipes: the acceptor quota slot held
    std::unique_ptr<connector> connecting;  ///< clients: created by the first async_connect
    std::string path;                       ///< clients: the pipe's path (\\.\pipe\NAME)
    pipe_options options;                   ///< clients: as given

    bool is_open() const noexcept { return socket.is_open(); }

    /// Closes the connection and gives the instance slot back. Pending operations complete
    /// with ::asio::error::operation_aborted. Idempotent.
    void close() noexcept;
    /// Cancels the pending operations (operation_aborted); the pipe stays usable.
    void cancel() noexcept;

    /// Takes a connection (a Windows pipe transport): its handle is duplicated onto Asio's
    /// completion port. On failure the connection is closed.
    void adopt(std::shared_ptr<npipe::detail::transport> connection, npipe::transmission_mode mode,
               std::error_code& ec) noexcept;

    bool is_message_complete() const noexcept { return message_complete; }
    bool end_of_stream() const noexcept { return eof; }

    /// Clients: one connect attempt, never blocking. connected: the connection is adopted;
    /// retry: no server yet, or every instance busy; failed: ec says why.
    enum class attempt { connected, retry, failed };
    attempt try_connect(std::error_code& ec) noexcept;
    /// Clients: the pipe namespace cannot be watched (false): the backoff paces the retries.
    bool start_watch() noexcept { return false; }
    void drain_watch() noexcept {}
    void stop_watch() noexcept {}
};

/// Errors a read or write must fail with before it starts (no pipe, not connected, wrong
/// direction), or an empty code.
std::error_code check_read(const pipe_impl* impl) noexcept;
std::error_code check_write(const pipe_impl* impl) noexcept;

/// Tells an error code that means "nothing to take now" (the acceptor's queue is empty).
bool would_block(const std::error_code& ec) noexcept;

/// What an overlapped ReadFile's outcome means for a pipe, as Asio reports it: `more` for
/// ERROR_MORE_DATA (the message goes on: not an error), ::asio::error::eof for the end of the
/// stream (the peer closed its end), anything else as it is.
std::error_code read_result(const std::error_code& ec, bool& more) noexcept;
/// The same for WriteFile: a peer that has gone is npipe::errc::broken_pipe.
std::error_code write_result(const std::error_code& ec) noexcept;

}  // namespace npipe::asio::detail
