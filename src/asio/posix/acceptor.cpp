// npipe::asio's acceptor on Linux: the listening socket's takeover watch is what the reactor
// waits on (src/asio/pipe_common.cpp has the acceptor itself).
#include "asio/acceptor_os.hpp"

#include <sys/socket.h>

#include <asio/generic/stream_protocol.hpp>

namespace npipe::asio::detail {

void watch(wait_object& waiter, npipe::detail::platform::handle h, std::error_code& ec) {
    waiter.assign(::asio::generic::stream_protocol(AF_UNIX, 0), h, ec);
}

void unwatch(wait_object& waiter) noexcept {
    std::error_code ignored;
    // The reactor lets go of the descriptor; the platform closes it.
    if (waiter.is_open())
        waiter.release(ignored);
}

std::unique_ptr<npipe::detail::platform::listener> listen_endpoint(const std::string& path,
                                                                   npipe::transmission_mode mode,
                                                                   const pipe_options& options, int,
                                                                   std::error_code& ec,
                                                                   std::string& why) {
    // max_instances is the acceptor's quota alone: a socket has no instances.
    return npipe::detail::platform::listen(path, mode, options, ec, why);
}

}  // namespace npipe::asio::detail
