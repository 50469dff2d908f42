// npipe::asio's acceptor on Windows: the listener's event is what Asio waits on, and the pipe's
// instances are created with the acceptor's max_instances (src/asio/pipe_common.cpp has the
// acceptor itself).
#include <windows.h>

#include "asio/acceptor_os.hpp"
#include "platform/windows/pipe_listener.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe::asio::detail {

// An object_handle owns what it waits on: it gets its own handle to an event the platform
// keeps.
void watch(wait_object& waiter, npipe::detail::platform::handle h, std::error_code& ec) {
    HANDLE own = ::GetCurrentProcess(), copy = nullptr;
    if (!::DuplicateHandle(own, h, own, &copy, SYNCHRONIZE, FALSE, 0)) {
        ec = npipe::detail::win::last_error();
        return;
    }
    waiter.assign(copy, ec);
    if (ec)
        ::CloseHandle(copy);
}

void unwatch(wait_object& waiter) noexcept {
    std::error_code ignored;
    waiter.close(ignored);  // our own handle to the event
}

std::unique_ptr<npipe::detail::platform::listener> listen_endpoint(
    const std::string& path, npipe::transmission_mode mode, const pipe_options& options,
    int max_instances, std::error_code& ec, std::string& why) {
    return npipe::detail::win::listen(path, mode, options, max_instances, ec, why);
}

}  // namespace npipe::asio::detail
