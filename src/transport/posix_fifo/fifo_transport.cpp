#include "transport/posix_fifo/fifo_transport.hpp"

#include <errno.h>
#include <unistd.h>

#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/posix_io.hpp"

namespace npipe::detail {

fifo_transport::fifo_transport(unique_fd fd) noexcept : fd_(fd.release()) {}

fifo_transport::~fifo_transport() {
    end();
}

std::size_t fifo_transport::receive(std::span<std::byte> buffer, std::chrono::nanoseconds,
                                    std::error_code& ec) noexcept {
    // No spinning: a FIFO cannot be read without consuming, and its writer is usually a child
    // process that is not answering a request of ours.
    int fd = fd_.load(std::memory_order_relaxed);
    return retry_interrupted([&] { return ::read(fd, buffer.data(), buffer.size()); }, ec);
}

std::size_t fifo_transport::send(std::span<const std::span<const std::byte>> pieces,
                                 std::error_code& ec) noexcept {
    iovec iov[4];
    int count = gather(pieces, iov, ec);
    if (count < 0)
        return 0;
    int fd = fd_.load(std::memory_order_relaxed);
    // write() on a FIFO whose reader has gone raises SIGPIPE: never for the process.
    sigpipe_blocked quiet;
    return retry_interrupted([&] { return ::writev(fd, iov, count); }, ec);
}

bool fifo_transport::shutdown(shutdown_how, std::error_code& ec) noexcept {
    ec.clear();
    end();  // a FIFO end has one direction: closing it is the shutdown
    return false;
}

void fifo_transport::end() noexcept {
    // A FIFO has no shutdown: closing it is the only way to let the peer see the end.
    unique_fd closing(fd_.exchange(-1));
}

peer_credentials fifo_transport::peer(std::error_code& ec) const noexcept {
    ec = errc::not_supported;
    return {};
}

}  // namespace npipe::detail
