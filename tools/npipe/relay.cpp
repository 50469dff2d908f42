#include "relay.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
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
    std::atomic<bool> input_ended{false};
    std::atomic<bool> timed_out{false};          // the write timeout hit: the relay is over
    std::atomic<std::int64_t> last_activity{0};  // steady_clock ticks of the last byte moved
    event_fd done;
    event_fd cancel;
    std::vector<std::byte>* carry = nullptr;
    std::chrono::milliseconds write_timeout{0};
};

std::int64_t now_ticks() {
    return std::chrono::steady_clock::now().time_since_epoch().count();
}

void raise(int fd) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(fd, &one, sizeof one);
}

// Sends `data`; on a peer that went away keeps it in carry (for a reconnecting caller).
bool send_chunk(pipe_stream& pipe, std::span<const std::byte> data, signals& s) {
    std::error_code ec;
    pipe.write(data, ec);
    if (!ec) {
        s.last_activity = now_ticks();
        return true;
    }
    if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block) {
        // SO_SNDTIMEO expired: the peer has not read for write_timeout. Closing ends the
        // reading side too, so the whole relay stops.
        std::cerr << "npipe: pipe '" << pipe.pipe_name() << "': the peer read nothing for "
                  << s.write_timeout.count() << " ms (write timeout); closing\n";
        s.failure = 1;
        s.timed_out = true;
        pipe.close();
    } else if (ec != errc::broken_pipe && ec != errc::operation_aborted) {
        std::cerr << "npipe: pipe '" << pipe.pipe_name() << "': write: " << ec.message() << '\n';
        s.failure = 1;
    } else if (s.carry) {
        s.carry->assign(data.begin(), data.end());
    }
    return false;  // the peer stopped reading: nothing more to send
}

void input_to_pipe(pipe_stream& pipe, int in_fd, signals& s) {
    if (s.carry && !s.carry->empty()) {
        std::vector<std::byte> pending;
        pending.swap(*s.carry);
        if (!send_chunk(pipe, pending, s)) {
            raise(s.done.get());
            return;
        }
    }
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
            s.input_ended = true;
            try {
                if (pipe.can_write())
                    pipe.shutdown_write();
            } catch (const std::exception&) {
            }
            break;
        }
        if (!send_chunk(pipe, std::span(buffer.data(), static_cast<std::size_t>(n)), s))
            break;
    }
    raise(s.done.get());
}

// Waits until the pipe is readable; false when nothing moved either way for idle_timeout.
bool wait_for_data(int fd, std::chrono::milliseconds idle_timeout, signals& s) {
    if (idle_timeout.count() <= 0)
        return true;
    for (;;) {
        auto idle_for = std::chrono::steady_clock::duration(now_ticks() - s.last_activity);
        auto left = std::chrono::ceil<std::chrono::milliseconds>(idle_timeout - idle_for);
        if (left.count() <= 0)
            return false;
        pollfd readable{fd, POLLIN, 0};
        int n =
            ::poll(&readable, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30)));
        if (n != 0)
            return true;  // readable, hung up or failed: the read tells which
    }
}

}  // namespace

relay_outcome relay(pipe_stream& pipe, int in_fd, int out_fd, const relay_options& options,
                    std::vector<std::byte>* carry) {
    // The descriptor stays allocated until the pipe is destroyed, also after close() (which
    // makes native_handle() return -1), so polling this number is safe to the end.
    const int fd = pipe.native_handle();
    signals s;
    s.carry = carry;
    s.write_timeout = options.write_timeout;
    s.last_activity = now_ticks();
    if (options.write_timeout.count() > 0) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(options.write_timeout.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>(options.write_timeout.count() % 1000 * 1000);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    relay_outcome outcome;
    bool sending = pipe.can_write();
    std::thread sender;
    if (sending)
        sender = std::thread(input_to_pipe, std::ref(pipe), in_fd, std::ref(s));

    int status = 0;
    if (pipe.can_read()) {
        std::vector<std::byte> buffer(chunk);
        for (;;) {
            if (!wait_for_data(fd, options.idle_timeout, s)) {
                std::cerr << "npipe: pipe '" << pipe.pipe_name() << "': nothing moved for "
                          << options.idle_timeout.count() << " ms (idle timeout); closing\n";
                status = 1;
                pipe.close();
                break;
            }
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
            s.last_activity = now_ticks();
            if (!write_fd(out_fd, buffer.data(), n)) {
                if (errno != EPIPE)
                    std::cerr << "npipe: write to stdout: " << std::strerror(errno) << '\n';
                status = errno == EPIPE ? 0 : 1;
                outcome.finished = true;  // nobody reads our output any more
                break;
            }
        }
    }

    if (sending) {
        // Our input may still have bytes for a peer that only shut down its write side (a .NET
        // client opened with PipeDirection.In does that at once). Wait for our input to end,
        // unless the peer has closed the pipe entirely: then nobody would read it.
        pollfd fds[2] = {{s.done.get(), POLLIN, 0}, {fd, 0, 0}};
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
    outcome.status = status ? status : s.failure.load();
    outcome.finished = outcome.finished || s.input_ended || s.timed_out || status != 0;
    return outcome;
}

int relay(pipe_stream& pipe, int in_fd, int out_fd) {
    return relay(pipe, in_fd, out_fd, {}, nullptr).status;
}

}  // namespace npipe::cli
