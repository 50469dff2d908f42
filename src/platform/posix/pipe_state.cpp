// POSIX side of pipe_state: the wake-up eventfd, the blocking waits and the raw I/O loops.
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "npipe/errors.hpp"
#include "core/pipe_state.hpp"
#include "platform/posix/local_socket.hpp"

namespace npipe::detail {

pipe_state::pipe_state(std::string name_, pipe_direction direction_, fd_kind kind_)
    : name(std::move(name_)),
      direction(direction_),
      kind(kind_),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!wake_)
        throw pipe_error(errno_code(errno), name, "create wake-up eventfd");
}

pipe_state::~pipe_state() = default;

void pipe_state::drop_connection(bool end_for_everyone) noexcept {
    // shutdown first: a thread blocked in read() on this descriptor returns 0 instead of
    // sleeping on a descriptor number that may be reused after close. It ends the connection
    // for every process holding a copy, so a plain disconnect (a child may have the
    // connection, as with `npipe serve -- CMD`) only closes ours.
    if (messages && conn)
        messages->flush_if_idle();
    if (end_for_everyone && conn && kind == fd_kind::socket)
        ::shutdown(conn.get(), SHUT_RDWR);
    conn.reset();
    broken = false;
}

void pipe_state::tune(const pipe_options& options) noexcept {
    coalesce_messages = options.coalesce_messages;
    spin = options.spin_before_block;
    // With one CPU online the peer we wait for cannot run while we poll: polling only delays it.
    if (spin.count() > 0 && ::sysconf(_SC_NPROCESSORS_ONLN) <= 1)
        spin = {};
}

namespace {

/// Whether this thread and the process at the other end of socket `fd` are both confined to
/// the same single CPU (taskset, cgroups): then the peer cannot answer while we poll, and a
/// message read's poll (a peek, then the receive) only adds system calls to each wait.
/// The peer's process-wide mask stands for the thread that will answer.
bool peer_confined_to_our_cpu(int fd) noexcept {
    cpu_set_t ours, theirs;
    if (::sched_getaffinity(0, sizeof ours, &ours) != 0 || CPU_COUNT(&ours) != 1)
        return false;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0)
        return false;  // a peer in another pid namespace shows no pid we could ask about
    return ::sched_getaffinity(cred.pid, sizeof theirs, &theirs) == 0 && CPU_EQUAL(&ours, &theirs);
}

}  // namespace

void pipe_state::attach_message_channel(std::size_t max_message_size,
                                        std::error_code& ec) noexcept {
    try {
        messages = std::make_unique<message_channel>(
            std::make_unique<seqpacket_transport>(conn.get()), max_message_size);
        if (coalesce_messages)
            messages->enable_coalescing();
        if (spin.count() > 0 && !peer_confined_to_our_cpu(conn.get()))
            messages->set_spin(conn.get(), spin);
        ec.clear();
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
}

void pipe_state::close() noexcept {
    if (closed.exchange(true))
        return;
    if (messages && conn)
        messages->flush_if_idle();  // coalesced messages still go out, as at a disconnect
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
    // Another thread may be inside read() or write() on the socket right now: shutdown wakes it
    // and ends the connection for the peer, while the descriptor itself stays allocated until
    // the state is destroyed, so its number cannot be reused under that thread. A FIFO has no
    // shutdown: closing it is the only way to let the peer see the end.
    if (kind == fd_kind::socket) {
        if (conn)
            ::shutdown(conn.get(), SHUT_RDWR);
    } else {
        conn.reset();
    }
    on_close();
}

namespace {

int poll_timeout_ms(std::optional<std::chrono::steady_clock::time_point> deadline) {
    if (!deadline)
        return -1;
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
}

}  // namespace

std::error_code pipe_state::wait_readable(
    int fd, std::optional<std::chrono::steady_clock::time_point> deadline) {
    for (;;) {
        if (closed)
            return errc::operation_aborted;
        pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {fd, POLLIN, 0}};
        int n = ::poll(fds, fd >= 0 ? 2 : 1, poll_timeout_ms(deadline));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno_code(errno);
        }
        if (closed || fds[0].revents)
            return errc::operation_aborted;
        if (fd >= 0 && fds[1].revents)
            return {};
        if (deadline && std::chrono::steady_clock::now() >= *deadline)
            return errc::timed_out;
    }
}

bool pipe_state::sleep_until(std::chrono::steady_clock::time_point until) {
    return wait_readable(-1, until) == errc::operation_aborted;
}

std::error_code errno_code(int error) noexcept {
    switch (error) {
        case EPIPE:
        case ECONNRESET:
            return errc::broken_pipe;
        case EACCES:
        case EPERM:
            return errc::access_denied;
        case ETIMEDOUT:
            return errc::timed_out;
        case ENAMETOOLONG:
            return errc::path_too_long;
        case ENOTSOCK:
            return errc::not_a_socket;
        case EPROTOTYPE:
            return errc::protocol_error;
        default:
            return {error, std::system_category()};
    }
}

std::size_t read_some(int fd, std::span<std::byte> buffer, std::error_code& ec) noexcept {
    for (;;) {
        ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n >= 0) {
            ec.clear();
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR)
            continue;
        // A reset peer ends the stream for a reader: the bytes it sent were all delivered
        // before the reset was reported, so this is end of stream, not data loss.
        if (errno == ECONNRESET) {
            ec.clear();
            return 0;
        }
        ec = errno_code(errno);
        return 0;
    }
}

std::size_t read_some_spinning(int fd, std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                               std::error_code& ec) noexcept {
    const auto until = std::chrono::steady_clock::now() + spin;
    do {
        ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n >= 0) {
            ec.clear();
            return static_cast<std::size_t>(n);
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            break;  // read_some gives errors their meaning
        // The peer may share our CPU (its affinity is not ours to see): let it run.
        ::sched_yield();
    } while (std::chrono::steady_clock::now() < until);
    return read_some(fd, buffer, ec);
}

namespace {

// write() on a FIFO whose reader has gone raises SIGPIPE. Block it for this thread around the
// write and swallow the one the write raised, so the process never dies of it and a SIGPIPE
// that was already pending for another reason is left alone.
ssize_t write_pipe_no_sigpipe(int fd, const std::byte* data, std::size_t size) {
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    ssize_t n = ::write(fd, data, size);
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

void write_all(int fd, fd_kind kind, std::span<const std::byte> data,
               std::error_code& ec) noexcept {
    ec.clear();
    while (!data.empty()) {
        ssize_t n = kind == fd_kind::socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                                            : write_pipe_no_sigpipe(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ec = errno_code(errno);
            return;
        }
        data = data.subspan(static_cast<std::size_t>(n));
    }
}

void throw_if(const std::error_code& ec, const std::string& pipe_name, std::string_view operation) {
    if (ec)
        throw pipe_error(ec, pipe_name, operation);
}

}  // namespace npipe::detail
