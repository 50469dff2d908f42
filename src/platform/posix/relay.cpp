// npipe::relay on POSIX descriptors: one thread copies the input to the pipe while the calling
// thread copies the pipe to the output; eventfds carry "input done" and "stop" between them.
#include "npipe/relay.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <optional>
#include <thread>

#include "core/pipe_state.hpp"
#include "core/relay_ending.hpp"
#include "npipe/errors.hpp"
#include "platform/posix/posix_io.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe {
namespace {

using detail::unique_fd;

constexpr std::size_t chunk = 256 * 1024;

std::int64_t now_ticks() {
    return std::chrono::steady_clock::now().time_since_epoch().count();
}

void raise(const unique_fd& fd) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(fd.get(), &one, sizeof one);
}

bool is_peer_gone(const std::error_code& ec) {
    return ec == errc::broken_pipe || ec == std::errc::connection_reset ||
           ec == std::errc::broken_pipe;
}

// What both threads share. The first reason to end wins: a timeout closes the pipe, and the
// failures that closing causes in the other thread are its consequence, not news.
struct shared_state : detail::relay_ending {
    shared_state(pipe_stream& p, const relay_options& o) : pipe(p), options(o) {}
    pipe_stream& pipe;
    const relay_options& options;
    std::vector<std::byte>* carry = nullptr;
    unique_fd done{::eventfd(0, EFD_CLOEXEC)};    // the input side has finished
    unique_fd cancel{::eventfd(0, EFD_CLOEXEC)};  // stop the input side
    std::atomic<std::int64_t> last_activity{now_ticks()};
    std::atomic<bool> input_ended{false};
    std::atomic<std::uint64_t> sent{0}, received{0};

    std::mutex mutex;  ///< guards relay_ending's fields

    // Records why the relay ends, unless a reason came first; true when this one is it.
    bool finish(relay_end why, std::error_code ec = {}, std::string_view what = {}) {
        std::lock_guard lock(mutex);
        return record(why, ec, what);
    }
    bool finished() {
        std::lock_guard lock(mutex);
        return end.has_value();
    }
    void moved(std::atomic<std::uint64_t>& total, std::atomic<std::uint64_t>* counter,
               std::size_t n) {
        total += n;
        if (counter)
            *counter += n;
        last_activity = now_ticks();
    }
};

// Returns false with errno set when the descriptor fails (EPIPE: its reader has gone).
bool write_all(int fd, const std::byte* data, std::size_t size) {
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

// Sends `data`; false when the relay's sending is over (the reason is recorded).
bool send_chunk(std::span<const std::byte> data, shared_state& s) {
    std::error_code ec;
    s.pipe.write(data, ec);
    if (!ec) {
        s.moved(s.sent, s.options.counters ? &s.options.counters->sent : nullptr, data.size());
        return true;
    }
    if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block) {
        // The send timeout expired: the peer has not read for write_timeout. Closing ends the
        // reading side too, so the whole relay stops.
        if (s.finish(relay_end::write_timeout))
            s.pipe.close();
    } else if (ec == errc::operation_aborted) {
        s.finish(relay_end::cancelled);
    } else if (is_peer_gone(ec)) {
        if (s.carry)
            s.carry->assign(data.begin(), data.end());
        s.finish(relay_end::peer_closed);
    } else {
        s.finish(relay_end::failed, ec, "write to the pipe");
    }
    return false;
}

void input_to_pipe(int in_fd, shared_state& s) {
    if (s.carry && !s.carry->empty()) {
        std::vector<std::byte> pending;
        pending.swap(*s.carry);
        if (!send_chunk(pending, s)) {
            raise(s.done);
            return;
        }
    }
    std::vector<std::byte> buffer(chunk);
    for (;;) {
        pollfd fds[2] = {{in_fd, POLLIN, 0}, {s.cancel.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            s.finish(relay_end::failed, {errno, std::system_category()}, "poll the input");
            break;
        }
        if (fds[1].revents)
            break;
        ssize_t n = ::read(in_fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s.finish(relay_end::failed, {errno, std::system_category()}, "read from the input");
            break;
        }
        if (n == 0) {
            s.input_ended = true;
            try {
                if (s.pipe.can_write())
                    s.pipe.shutdown_write();
            } catch (const std::exception&) {
                // The peer is gone already: the pipe's side of the story tells.
            }
            break;
        }
        if (!send_chunk(std::span(buffer.data(), static_cast<std::size_t>(n)), s))
            break;
    }
    raise(s.done);
}

// Waits until the pipe is readable; false when nothing moved either way for idle_timeout.
// A reset connection (the peer closed with bytes of ours unread, or a server closed its
// listening socket with us still in its backlog) is noted in `reset`: the read that follows
// reports it only as the end of the stream.
bool wait_for_data(int fd, shared_state& s, bool& reset) {
    auto idle_timeout = s.options.idle_timeout;
    for (;;) {
        int wait_ms = -1;
        if (idle_timeout.count() > 0) {
            auto idle_for = std::chrono::steady_clock::duration(now_ticks() - s.last_activity);
            auto left = std::chrono::ceil<std::chrono::milliseconds>(idle_timeout - idle_for);
            if (left.count() <= 0)
                return false;
            wait_ms = static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30));
        }
        pollfd readable{fd, POLLIN, 0};
        int n = ::poll(&readable, 1, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 0) {
            if (readable.revents & POLLERR) {
                int error = 0;
                socklen_t size = sizeof error;
                if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 &&
                    (error == ECONNRESET || error == EPIPE))
                    reset = true;
            }
            return true;  // readable, hung up or failed: the read tells which
        }
    }
}

// Whether the pipe's descriptor shows its data (a socket does; shared memory shows only the
// peer's hang-up, so its reads are made without waiting on it first). relay()'s public entry
// takes a pipe_stream: its state is reached through the protected accessor, as a subclass may.
bool handle_shows_data(const pipe_stream& pipe) noexcept {
    struct access : pipe_stream {
        static const std::shared_ptr<detail::pipe_state>& of(const pipe_stream& p) noexcept {
            return (p.*(&access::shared_state))();
        }
    };
    const auto& state = access::of(pipe);
    return !state || !state->conn || state->conn->handle_shows_data();
}

void pipe_to_output(int fd, int out_fd, shared_state& s) {
    std::vector<std::byte> buffer(chunk);
    bool reset = false;
    const bool pollable = handle_shows_data(s.pipe);
    for (;;) {
        if (pollable && !wait_for_data(fd, s, reset)) {
            if (s.finish(relay_end::idle_timeout))
                s.pipe.close();
            return;
        }
        std::error_code ec;
        auto n = s.pipe.read(buffer, ec);
        if (ec) {
            if (ec == errc::operation_aborted)
                s.finish(relay_end::cancelled);
            else if (is_peer_gone(ec))
                s.finish(relay_end::peer_closed);
            else
                s.finish(relay_end::failed, ec, "read from the pipe");
            return;
        }
        if (n == 0) {
            if (reset)
                s.finish(relay_end::peer_closed);
            return;
        }
        if (!write_all(out_fd, buffer.data(), n)) {
            // Nobody takes the rest: stop both directions, and let the peer know by closing.
            if (errno == EPIPE ? s.finish(relay_end::output_closed)
                               : s.finish(relay_end::failed, {errno, std::system_category()},
                                          "write to the output"))
                s.pipe.close();
            return;
        }
        s.moved(s.received, s.options.counters ? &s.options.counters->received : nullptr, n);
    }
}

// After the pipe's data has ended: our input may still have bytes for a peer that only shut
// down its write side (a .NET client opened with PipeDirection.In does that at once), so wait
// for the input to end; unless the peer has closed the pipe entirely and our input has nothing
// waiting, when nobody would ever read it: then stop at once.
void wait_for_input_side(int fd, int in_fd, shared_state& s) {
    pollfd fds[2] = {{s.done.get(), POLLIN, 0}, {fd, 0, 0}};
    nfds_t count = s.finished() ? 1 : 2;
    if (s.finished())
        raise(s.cancel);
    for (;;) {
        if (::poll(fds, count, -1) < 0) {
            if (errno == EINTR)
                continue;
            raise(s.cancel);
            count = 1;
            continue;
        }
        if (fds[0].revents & POLLIN)
            return;
        if (count == 2 && (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL))) {
            // Input already waiting is left to the input thread: its end makes a clean finish,
            // its data a failed write. Anything else would wait for a peer that is gone.
            pollfd input{in_fd, POLLIN, 0};
            if (::poll(&input, 1, 0) <= 0) {
                s.finish(relay_end::peer_closed);
                raise(s.cancel);
            }
            count = 1;
        }
    }
}

}  // namespace

relay_result relay(pipe_stream& pipe, pipe_stream::native_handle_type input,
                   pipe_stream::native_handle_type output, const relay_options& options,
                   std::vector<std::byte>* carry) {
    // The descriptor stays allocated until the pipe is destroyed, also after close() (which
    // makes native_handle() return -1), so polling this number is safe to the end.
    const int fd = pipe.native_handle();
    shared_state s(pipe, options);
    s.carry = carry;
    if (!s.done || !s.cancel)
        throw pipe_error(std::error_code(errno, std::system_category()), pipe.pipe_name(),
                         "relay: eventfd");
    if (options.write_timeout.count() > 0) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(options.write_timeout.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>(options.write_timeout.count() % 1000 * 1000);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    // Our output may be a pipe whose reader goes away: that must be an EPIPE for this thread,
    // never a SIGPIPE for the process (the input thread inherits the mask).
    std::optional<detail::sigpipe_blocked> quiet(std::in_place);
    bool sending = pipe.can_write();
    std::thread sender;
    if (sending)
        sender = std::thread(input_to_pipe, input, std::ref(s));
    if (pipe.can_read())
        pipe_to_output(fd, output, s);
    if (sending) {
        wait_for_input_side(fd, input, s);
        sender.join();
    }

    quiet.reset();

    std::lock_guard lock(s.mutex);
    return s.result(s.input_ended, s.sent, s.received);
}

}  // namespace npipe
