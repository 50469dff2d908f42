#include "transport/posix_fifo/fifo_transport.hpp"

#include <errno.h>
#include <signal.h>
#include <time.h>
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

namespace {

// write() on a FIFO whose reader has gone raises SIGPIPE. Block it for this thread around the
// write and swallow the one the write raised, so the process never dies of it and a SIGPIPE
// that was already pending for another reason is left alone.
ssize_t write_no_sigpipe(int fd, const iovec* iov, int count) {
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    ssize_t n = ::writev(fd, iov, count);
    int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        timespec zero{};
        while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
    errno = saved;
    return n;
}

}  // namespace

std::size_t fifo_transport::send(std::span<const std::span<const std::byte>> pieces,
                                 std::error_code& ec) noexcept {
    iovec iov[4];
    int count = gather(pieces, iov, ec);
    if (count < 0)
        return 0;
    int fd = fd_.load(std::memory_order_relaxed);
    return retry_interrupted([&] { return write_no_sigpipe(fd, iov, count); }, ec);
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
