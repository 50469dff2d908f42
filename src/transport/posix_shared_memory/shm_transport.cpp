#include "transport/posix_shared_memory/shm_transport.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"

namespace npipe::detail {

namespace {

constexpr int required_seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

// A read or write publishes its progress at least this often.
constexpr std::size_t publish_unit = 64 * 1024;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

struct mapping {
    void* at = MAP_FAILED;
    std::size_t size = 0;
    mapping() = default;
    mapping(int fd, std::size_t size_)
        : at(::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)), size(size_) {}
    ~mapping() {
        if (at != MAP_FAILED)
            ::munmap(at, size);
    }
    void* release() noexcept { return std::exchange(at, MAP_FAILED); }
    explicit operator bool() const noexcept { return at != MAP_FAILED; }
};

std::shared_ptr<transport> make(unique_fd receive_bell, unique_fd send_bell, bool server,
                                mapping& map, const std::uint64_t (&sizes)[2],
                                std::error_code& ec) noexcept {
    try {
        auto t = std::make_shared<shm_transport>(std::move(receive_bell), std::move(send_bell),
                                                 server, map.at, map.size, sizes);
        map.release();
        ec.clear();
        return t;
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
}

// Whether `fd` is a memfd of exactly `size` bytes that nobody can shrink or grow any more (a
// shrunk mapping would raise SIGBUS here).
bool sealed_memory_of_size(int fd, std::size_t size) noexcept {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        static_cast<std::uint64_t>(st.st_size) != size)
        return false;
    int seals = ::fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & required_seals) == required_seals;
}

bool is_unix_stream_socket(int fd) noexcept {
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
        return false;
    len = sizeof domain;
    return ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

}  // namespace

shm_transport::shm_transport(unique_fd receive_bell, unique_fd send_bell, bool server, void* map,
                             std::size_t map_size, const std::uint64_t (&ring_sizes)[2]) noexcept
    : receive_bell_(receive_bell.release()),
      send_bell_(send_bell.release()),
      server_(server),
      mapping_(map),
      mapping_size_(map_size),
      in_(static_cast<std::byte*>(map), server ? shm::client_to_server : shm::server_to_client,
          ring_sizes),
      out_(static_cast<std::byte*>(map), server ? shm::server_to_client : shm::client_to_server,
           ring_sizes) {}

shm_transport::~shm_transport() {
    close();
    ::munmap(mapping_, mapping_size_);
}

std::shared_ptr<transport> shm_transport::connect(unique_fd connection, std::size_t ring_size,
                                                  std::error_code& ec) noexcept {
    if (!shm::valid_ring_size(ring_size)) {
        ec = errc::invalid_argument;
        return nullptr;
    }
    const std::uint64_t sizes[2] = {ring_size, ring_size};
    const std::size_t size = shm::mapping_size(sizes[0], sizes[1]);
    // Anonymous memory: no name anyone else could open; only the descriptor we hand over
    // reaches it. Sealed before it leaves, so the server can trust its size.
    unique_fd memory(::memfd_create("npipe-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!memory || ::ftruncate(memory.get(), static_cast<off_t>(size)) != 0 ||
        ::fcntl(memory.get(), F_ADD_SEALS, required_seals) != 0) {
        ec = errno_code(errno);
        return nullptr;
    }
    mapping map(memory.get(), size);
    if (!map) {
        ec = errno_code(errno);
        return nullptr;
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        ec = errno_code(errno);
        return nullptr;
    }
    unique_fd ours(pair[0]), theirs(pair[1]);

    shm::hello h;
    h.ring_size[0] = sizes[0];
    h.ring_size[1] = sizes[1];
    std::byte wire[shm::hello::size];
    h.encode(wire);
    iovec iov{wire, sizeof wire};
    alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    const int fds[2] = {memory.get(), theirs.get()};
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    ssize_t sent;
    while ((sent = ::sendmsg(connection.get(), &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    if (sent < 0) {
        ec = errno_code(errno);
        return nullptr;
    }
    if (static_cast<std::size_t>(sent) != sizeof wire) {
        ec = errc::protocol_error;
        return nullptr;
    }
    return make(std::move(ours), std::move(connection), false, map, sizes, ec);
}

std::shared_ptr<transport> shm_transport::accept(unique_fd& connection,
                                                 std::error_code& ec) noexcept {
    // The client sends its hello in one sendmsg right after connecting, so it arrives whole or
    // not yet: a server never waits for it here (a client that connects and stays silent must
    // not hold up the others; the listener keeps it until its hello comes).
    std::byte wire[shm::hello::size];
    unique_fd fds[2];
    int fd_count = 0;
    bool bad = false;
    iovec iov{wire, sizeof wire};
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    while ((n = ::recvmsg(connection.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) < 0 &&
           errno == EINTR) {
    }
    if (n < 0) {
        ec = errno == EAGAIN || errno == EWOULDBLOCK
                 ? std::make_error_code(std::errc::operation_would_block)
                 : errno_code(errno);
        return nullptr;
    }
    // Every descriptor that arrived is ours to close, whatever else is wrong.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            unique_fd taken(fd);
            if (fd_count < 2)
                fds[fd_count++] = std::move(taken);
            else
                bad = true;
        }
    }
    if (static_cast<std::size_t>(n) != sizeof wire || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        bad = true;
    shm::hello h;
    if (bad || fd_count != 2 || !h.decode(wire) ||
        !sealed_memory_of_size(fds[0].get(), shm::mapping_size(h.ring_size[0], h.ring_size[1])) ||
        !is_unix_stream_socket(fds[1].get())) {
        ec = errc::protocol_error;
        return nullptr;
    }
    mapping map(fds[0].get(), shm::mapping_size(h.ring_size[0], h.ring_size[1]));
    if (!map) {
        ec = errno_code(errno);
        return nullptr;
    }
    return make(std::move(connection), std::move(fds[1]), true, map, h.ring_size, ec);
}

bool shm_transport::usable(const std::atomic<int>& bell, std::error_code& ec) const noexcept {
    if (corrupt_)
        ec = errc::protocol_error;  // sticky: nothing after garbage is trusted
    else if (bell.load(std::memory_order_relaxed) < 0)
        ec = std::error_code(EBADF, std::system_category());  // closed
    return !ec;
}

void shm_transport::corrupted(std::error_code& ec) noexcept {
    // Nothing read after garbage can be trusted: the pipe is over, for both ends.
    corrupt_ = true;
    ec = errc::protocol_error;
    end();
}

void shm_transport::ring(const std::atomic<int>& bell, std::atomic<bool>& hung_up) noexcept {
    const char one = 1;
    // A full bell socket already holds a wake-up: losing this one loses nothing.
    if (::send(bell.load(std::memory_order_relaxed), &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
        (errno == EPIPE || errno == ECONNRESET))
        hung_up = true;
}

shm_transport::drained shm_transport::drain_bell(int fd, std::atomic<bool>& hung_up,
                                                 std::error_code& ec) noexcept {
    char bytes[64];
    bool rung = false;
    for (;;) {
        ssize_t n = ::recv(fd, bytes, sizeof bytes, MSG_DONTWAIT);
        if (n > 0) {
            rung = true;
            continue;
        }
        if (n == 0 || errno == ECONNRESET) {
            hung_up = true;  // the peer closed it, exited or was killed; or end() shut it
            return drained::rung;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return rung ? drained::rung : drained::empty;
        ec = errno_code(errno);
        return drained::failed;
    }
}

bool shm_transport::wait_bell(std::atomic<int>& bell, std::atomic<bool>& hung_up,
                              std::error_code& ec) noexcept {
    const int fd = bell.load(std::memory_order_relaxed);
    // Sleeping in recv itself, as a reader of a socket pipe does, costs one system call per
    // wake-up. Bytes left behind (more than one ring since we last slept) only make the next
    // look spurious. A non-blocking bell is npipe::asio's, which waits for it in its reactor:
    // EAGAIN goes back to it (the waiting flag is set, so the peer rings the bell).
    char drained[64];
    for (;;) {
        ssize_t n = ::recv(fd, drained, sizeof drained, 0);
        if (n > 0)
            return true;
        if (n == 0 || errno == ECONNRESET) {
            hung_up = true;  // the peer closed it, exited or was killed; or end() shut it
            return true;
        }
        if (errno == EINTR)
            continue;
        ec = errno == EAGAIN || errno == EWOULDBLOCK
                 ? std::error_code(EAGAIN, std::system_category())
                 : errno_code(errno);
        return false;
    }
}

std::size_t shm_transport::receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                                   std::error_code& ec) noexcept {
    ec.clear();
    if (buffer.empty())
        return 0;
    std::lock_guard lock(read_mutex_);
    if (!usable(receive_bell_, ec))
        return 0;
    const auto spin_until = spin.count() > 0 ? std::chrono::steady_clock::now() + spin
                                             : std::chrono::steady_clock::time_point{};
    unsigned spins = 0;
    for (;;) {
        if (receive_shut_ || ended_)
            return 0;
        shm::ring_status status;
        bool last = in_.writer_done() || receive_hung_up_ || send_hung_up_;
        // Everything published before the writer said it was done is visible now. Room is
        // given back in parts, so a writer waiting for it starts again while we copy.
        std::size_t n = 0;
        while (n < buffer.size()) {
            auto part = buffer.subspan(n, std::min(buffer.size() - n, publish_unit));
            std::size_t got = in_.read(part, status);
            if (status == shm::ring_status::corrupt) {
                corrupted(ec);
                return 0;
            }
            if (got == 0)
                break;
            n += got;
            if (in_.take_writer_waiting())
                ring(receive_bell_, receive_hung_up_);
        }
        if (n > 0)
            return n;
        if (last)
            return 0;
        if (spin_until > std::chrono::steady_clock::time_point{} &&
            (++spins % 32 != 0 || std::chrono::steady_clock::now() < spin_until)) {
            // The clock is read every 32 looks only: a look is a few nanoseconds, a clock
            // read more. The peer may share our CPU (its affinity is not ours to see): let it
            // run now and then.
            if (spins % 256 == 0)
                ::sched_yield();
            else
                cpu_relax();
            continue;
        }
        in_.set_waiting();
        if (in_.readable() || in_.writer_done())
            continue;
        if (!wait_bell(receive_bell_, receive_hung_up_, ec))
            return 0;
    }
}

std::size_t shm_transport::send(std::span<const std::span<const std::byte>> pieces,
                                std::error_code& ec) noexcept {
    ec.clear();
    std::size_t total = 0;
    for (auto piece : pieces)
        total += piece.size();
    if (total == 0)
        return 0;
    std::lock_guard lock(write_mutex_);
    if (!usable(send_bell_, ec))
        return 0;
    std::size_t done = 0;
    for (;;) {
        if (send_shut_ || ended_ || send_hung_up_ || receive_hung_up_ || out_.reader_gone()) {
            ec = errc::broken_pipe;
            return 0;
        }
        // Published in parts, so the reader starts on a large write while we copy the rest.
        shm::ring_status status;
        std::size_t n = out_.write(pieces, status, done, publish_unit);
        if (status == shm::ring_status::corrupt) {
            corrupted(ec);
            return 0;
        }
        if (n > 0) {
            done += n;
            if (out_.take_reader_waiting())
                ring(send_bell_, send_hung_up_);
            if (done < total)
                continue;
        }
        if (done > 0)
            return done;  // a stream's short write: the caller sends the rest
        out_.set_waiting();
        if (out_.writable() || out_.reader_gone())
            continue;
        if (!wait_bell(send_bell_, send_hung_up_, ec))
            return 0;
    }
}

std::size_t shm_transport::available() const noexcept {
    std::lock_guard lock(read_mutex_);
    return receive_shut_ || ended_ || corrupt_ ? 0 : static_cast<std::size_t>(in_.available());
}

bool shm_transport::prepare_receive_wait() noexcept {
    std::lock_guard lock(read_mutex_);
    std::error_code ec;
    if (!usable(receive_bell_, ec) || receive_shut_ || ended_ || in_.readable() ||
        in_.writer_done() || receive_hung_up_ || send_hung_up_)
        return true;
    in_.set_waiting();
    // Old rings are drained, so that the reactor's wait starts on an empty bell and the next
    // ring (the waiting flag asks for it) wakes it.
    if (drain_bell(receive_bell_.load(std::memory_order_relaxed), receive_hung_up_, ec) ==
        drained::failed)
        return true;  // the read that follows reports it
    return in_.readable() || in_.writer_done() || receive_hung_up_;
}

bool shm_transport::shutdown(shutdown_how how, std::error_code& ec) noexcept {
    ec.clear();
    if (how != shutdown_how::receive) {
        send_shut_ = true;
        out_.mark_done();
        if (out_.take_reader_waiting())
            ring(send_bell_, send_hung_up_);
    }
    if (how != shutdown_how::send) {
        receive_shut_ = true;
        in_.mark_gone();
        if (in_.take_writer_waiting())
            ring(receive_bell_, receive_hung_up_);
    }
    return true;
}

void shm_transport::end() noexcept {
    ended_ = true;
    in_.mark_gone();
    out_.mark_done();
    // The bells stay open (a thread blocked on one must not meet a reused descriptor), shut
    // down: that wakes our sleepers and tells the peer, in every process holding a copy.
    ::shutdown(receive_bell_.load(std::memory_order_relaxed), SHUT_RDWR);
    ::shutdown(send_bell_.load(std::memory_order_relaxed), SHUT_RDWR);
}

void shm_transport::close() noexcept {
    int receive = receive_bell_.exchange(-1), send = send_bell_.exchange(-1);
    if (receive < 0 && send < 0)
        return;
    in_.mark_gone();
    out_.mark_done();
    unique_fd closing_receive(receive), closing_send(send);
}

peer_credentials shm_transport::peer(std::error_code& ec) const noexcept {
    ucred cred{};
    socklen_t len = sizeof cred;
    int fd = (server_ ? receive_bell_ : send_bell_).load(std::memory_order_relaxed);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ec = errno_code(errno);
        return {};
    }
    ec.clear();
    return {cred.uid, cred.gid, cred.pid};
}

}  // namespace npipe::detail
