// npipe::asio's pipe on Windows: the connection's handle on Asio's I/O completion port
// (include/npipe/asio/detail/windows/pipe_impl.hpp).
#include "npipe/asio/detail/windows/pipe_impl.hpp"

#include <windows.h>

#include <cstdint>
#include <utility>

#include "asio/instance_pool.hpp"
#include "core/named_pipe_rules.hpp"
#include "core/pipe_state.hpp"
#include "core/platform.hpp"
#include "core/transport.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe::asio::detail {

namespace {

bool is_system(const std::error_code& ec, DWORD error) noexcept {
    return ec.value() == static_cast<int>(error) &&
           (ec.category() == std::system_category() ||
            ec.category() == ::asio::error::get_system_category());
}

bool is_peer_gone(const std::error_code& ec) noexcept {
    return is_system(ec, ERROR_BROKEN_PIPE) || is_system(ec, ERROR_PIPE_NOT_CONNECTED) ||
           is_system(ec, ERROR_NO_DATA) || is_system(ec, ERROR_HANDLE_EOF) ||
           ec == ::asio::error::eof;
}

}  // namespace

bool would_block(const std::error_code& ec) noexcept {
    return ec == std::errc::operation_would_block;
}

std::error_code read_result(const std::error_code& ec, bool& more) noexcept {
    more = is_system(ec, ERROR_MORE_DATA);
    if (more)
        return {};
    if (is_peer_gone(ec))
        return ::asio::error::eof;
    return ec;
}

std::error_code write_result(const std::error_code& ec) noexcept {
    if (is_peer_gone(ec))
        return npipe::errc::broken_pipe;
    return ec;
}

pipe_impl::pipe_impl(const ::asio::any_io_executor& ex) : socket(ex) {}

pipe_impl::~pipe_impl() {
    close();
}

void pipe_impl::close() noexcept {
    ++close_generation;
    std::error_code ignored;
    // Cancel first: closing a handle does not abort its overlapped I/O while another handle
    // (the transport's) keeps the pipe open; then the transport closes the pipe itself, and
    // the peer sees the end.
    if (socket.is_open()) {
        socket.cancel(ignored);
        socket.close(ignored);
    }
    if (transport)
        transport->close();
    if (connecting)
        connecting->timer.cancel();
    if (pool) {
        pool->release();
        pool.reset();
    }
}

void pipe_impl::cancel() noexcept {
    ++cancel_generation;
    std::error_code ignored;
    if (socket.is_open())
        socket.cancel(ignored);
    if (connecting)
        connecting->timer.cancel();
}

void pipe_impl::adopt(std::shared_ptr<npipe::detail::transport> connection,
                      npipe::transmission_mode mode, std::error_code& ec) noexcept {
    ec.clear();
    npipe::detail::apply_direction(*connection, direction);
    HANDLE own = ::GetCurrentProcess(), copy = nullptr;
    if (!::DuplicateHandle(own, connection->native_handle(), own, &copy, 0, FALSE,
                           DUPLICATE_SAME_ACCESS)) {
        ec = npipe::detail::win::last_error();
        connection->close();
        return;
    }
    socket.assign(copy, ec);  // onto the completion port
    if (ec) {
        ::CloseHandle(copy);
        connection->close();
        return;
    }
    transport = std::move(connection);
    transmission = mode;
    transmission_known = true;
    write_broken = false;
    message_complete = true;
    eof = false;
    discard_message = false;
}

}  // namespace npipe::asio::detail

namespace npipe::asio {

std::size_t pipe_stream::available(std::error_code& ec) const noexcept {
    ec.clear();
    if (!is_open()) {
        ec = npipe::errc::not_connected;
        return 0;
    }
    if (impl_->transmission == npipe::transmission_mode::message) {
        ec = npipe::errc::not_supported;
        return 0;
    }
    DWORD n = 0;
    if (!::PeekNamedPipe(impl_->socket.native_handle(), nullptr, 0, nullptr, &n, nullptr)) {
        DWORD error = ::GetLastError();
        if (error != ERROR_BROKEN_PIPE)  // the end of the stream: nothing to read
            ec = npipe::detail::win::win_code(error);
        return 0;
    }
    return n;
}

void pipe_stream::shutdown_write() {
    if (!is_open())
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(),
                                "shut down the write side");
    if (impl_->direction == pipe_direction::in)
        return;  // nothing more can reach the peer anyway
    if (impl_->transmission == npipe::transmission_mode::message)
        npipe::detail::throw_if(npipe::errc::not_supported, pipe_name(),
                                "shut down the write side of a message pipe (Windows has no "
                                "half-close)");
    // The synchronous pipe's half-close: an empty write, which its reader reads as the end of
    // the stream. Waited for here (nothing to buffer: it completes at once), on an event whose
    // low bit keeps its completion off Asio's port.
    npipe::detail::win::unique_handle event(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    if (!event)
        npipe::detail::throw_if(npipe::detail::win::last_error(), pipe_name(),
                                "shut down the write side");
    OVERLAPPED overlapped{};
    overlapped.hEvent = reinterpret_cast<HANDLE>(reinterpret_cast<std::uintptr_t>(event.get()) | 1);
    HANDLE h = impl_->socket.native_handle();
    static const char nothing = 0;
    DWORD done = 0, error = 0;
    if (!::WriteFile(h, &nothing, 0, nullptr, &overlapped)) {
        error = ::GetLastError();
        if (error == ERROR_IO_PENDING) {
            ::WaitForSingleObject(event.get(), INFINITE);
            error = ::GetOverlappedResult(h, &overlapped, &done, FALSE) ? 0 : ::GetLastError();
        }
    }
    std::error_code ec;
    if (error != 0)
        ec = detail::write_result(std::error_code(static_cast<int>(error), std::system_category()));
    if (ec == npipe::errc::broken_pipe)
        impl_->write_broken = true;
    npipe::detail::throw_if(ec, pipe_name(), "shut down the write side");
    impl_->direction = pipe_direction::in;
}

}  // namespace npipe::asio
