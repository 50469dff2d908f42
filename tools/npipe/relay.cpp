#include "relay.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include "npipe/errors.hpp"

namespace npipe::cli {
namespace {

// An eventfd, owned.
class event_fd {
  public:
    event_fd() : fd_(::eventfd(0, EFD_CLOEXEC)) {}
    ~event_fd() { ::close(fd_); }
    event_fd(const event_fd&) = delete;
    event_fd& operator=(const event_fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

constexpr std::size_t chunk = 256 * 1024;

bool write_fd(int fd, const std::byte* data, std::size_t size) {
    while (size) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Signals between the two directions: `done` when the input side has finished, `cancel` to stop
// the input side when the peer has hung up while our input (a terminal, say) stays open.
struct signals {
    std::atomic<int> failure{0};
    event_fd done;
    event_fd cancel;
};

void raise(int fd) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(fd, &one, sizeof one);
}

void input_to_pipe(pipe_stream& pipe, int in_fd, signals& s) {
    std::vector<std::byte> buffer(chunk);
    for (;;) {
        pollfd fds[2] = {{in_fd, POLLIN, 0}, {s.cancel.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents)
            break;
        ssize_t n = ::read(in_fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            std::cerr << "npipe: read from stdin: " << std::strerror(errno) << '\n';
            s.failure = 1;
            break;
        }
        if (n == 0) {
            std::error_code ignored;
            try {
                if (pipe.can_write())
                    pipe.shutdown_write();
            } catch (const std::exception&) {
            }
            break;
        }
        std::error_code ec;
        pipe.write(std::span(buffer.data(), static_cast<std::size_t>(n)), ec);
        if (ec) {
            if (ec != errc::broken_pipe && ec != errc::operation_aborted) {
                std::cerr << "npipe: pipe '" << pipe.pipe_name() << "': write: " << ec.message()
                          << '\n';
                s.failure = 1;
            }
            break;  // the peer stopped reading: nothing more to send
        }
    }
    raise(s.done.get());
}

}  // namespace

int relay(pipe_stream& pipe, int in_fd, int out_fd) {
    signals s;
    bool sending = pipe.can_write();
    std::thread sender;
    if (sending)
        sender = std::thread(input_to_pipe, std::ref(pipe), in_fd, std::ref(s));

    int status = 0;
    if (pipe.can_read()) {
        std::vector<std::byte> buffer(chunk);
        for (;;) {
            std::error_code ec;
            auto n = pipe.read(buffer, ec);
            if (ec) {
                std::cerr << "npipe: pipe '" << pipe.pipe_name() << "': read: " << ec.message()
                          << '\n';
                status = 1;
                break;
            }
            if (n == 0)
                break;
            if (!write_fd(out_fd, buffer.data(), n)) {
                if (errno != EPIPE)
                    std::cerr << "npipe: write to stdout: " << std::strerror(errno) << '\n';
                status = errno == EPIPE ? 0 : 1;
                break;
            }
        }
    }

    if (sending) {
        // Our input may still have bytes for a peer that only shut down its write side (a .NET
        // client opened with PipeDirection.In does that at once). Wait for our input to end,
        // unless the peer has closed the pipe entirely: then nobody would read it.
        pollfd fds[2] = {{s.done.get(), POLLIN, 0}, {pipe.native_handle(), 0, 0}};
        for (;;) {
            if (::poll(fds, 2, -1) < 0 && errno == EINTR)
                continue;
            if (fds[0].revents & POLLIN)
                break;
            if (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                raise(s.cancel.get());
                break;
            }
        }
        sender.join();
    }
    return status ? status : s.failure.load();
}

}  // namespace npipe::cli
