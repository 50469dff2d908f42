#include "transport/unix_socket/socket_transport.hpp"

#include <errno.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/posix_io.hpp"

namespace npipe::detail {

socket_transport::socket_transport(int fd, bool records, bool owned) noexcept
    : fd_(fd), owned_(owned), records_(records), send_size_(max_seqpacket_record) {
    if (!records)
        return;
    // Linux refuses (EMSGSIZE) a record longer than the socket's send buffer minus 32 bytes,
    // so a small out_buffer_size shrinks our records; receivers accept any size up to the max.
    int sndbuf = 0;
    socklen_t len = sizeof sndbuf;
    if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 && sndbuf > 0 &&
        static_cast<std::size_t>(sndbuf) < max_seqpacket_record + 64)
        send_size_ = std::max<std::size_t>(static_cast<std::size_t>(sndbuf) - 64, 256);
}

socket_transport::~socket_transport() {
    close();
}

void socket_transport::close() noexcept {
    int fd = fd_.exchange(-1);
    if (owned_)
        unique_fd closing(fd);
}

std::size_t socket_transport::max_send_size() const noexcept {
    return records_ ? send_size_ : transport::max_send_size();
}

std::size_t socket_transport::receive_size() const noexcept {
    return records_ ? max_seqpacket_record : 1;
}

std::size_t socket_transport::receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                                      std::error_code& ec) noexcept {
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const auto spin_until = spin.count() > 0 ? std::chrono::steady_clock::now() + spin
                                             : std::chrono::steady_clock::time_point{};
    int flags = spin.count() > 0 ? MSG_DONTWAIT : 0;
    for (;;) {
        msg.msg_flags = 0;
        ssize_t n = records_ ? ::recvmsg(fd(), &msg, MSG_CMSG_CLOEXEC | flags)
                    : flags  ? ::recv(fd(), buffer.data(), buffer.size(), flags)
                             : ::read(fd(), buffer.data(), buffer.size());
        if (n >= 0) {
            // A record longer than the buffer has lost its tail: the frames in it can no longer
            // be trusted, nor can anything after them.
            if (msg.msg_flags & MSG_TRUNC) {
                ec = errc::protocol_error;
                return 0;
            }
            clear_error(ec);
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET) {
            // A peer that closed with unread data of ours queued makes the kernel report
            // ECONNRESET once, *before* the records it sent us: read on to get them. On a
            // stream everything it sent was delivered first: this is end of stream.
            if (records_)
                continue;
            ec.clear();
            return 0;
        }
        if (flags && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (std::chrono::steady_clock::now() >= spin_until)
                flags = 0;  // the spin is over: block
            else
                ::sched_yield();  // the peer may share our CPU (its affinity is not ours to see)
            continue;
        }
        ec = errno_code(errno);
        return 0;
    }
}

std::size_t socket_transport::send(std::span<const std::span<const std::byte>> pieces,
                                   std::error_code& ec) noexcept {
    iovec iov[4];
    int count = gather(pieces, iov, ec);
    if (count < 0)
        return 0;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    // A record is sent whole or not at all, so there is no short write to resume; a stream
    // send may be short, and the caller sends the rest.
    return retry_interrupted(
        [&] {
            return count == 1 && !records_
                       ? ::send(fd(), iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                       : ::sendmsg(fd(), &msg, MSG_NOSIGNAL);
        },
        ec);
}

bool socket_transport::shutdown(shutdown_how how, std::error_code& ec) noexcept {
    int what = how == shutdown_how::send      ? SHUT_WR
               : how == shutdown_how::receive ? SHUT_RD
                                              : SHUT_RDWR;
    if (::shutdown(fd(), what) != 0)
        ec = errno_code(errno);
    else
        ec.clear();
    return true;
}

void socket_transport::end() noexcept {
    // shutdown, not close: a thread blocked in read() on this descriptor returns 0 instead of
    // sleeping on a descriptor number that may be reused; it also ends the connection for every
    // process holding a copy.
    ::shutdown(fd(), SHUT_RDWR);
}

peer_credentials socket_transport::peer(std::error_code& ec) const noexcept {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ec = errno_code(errno);
        return {};
    }
    ec.clear();
    return {cred.uid, cred.gid, cred.pid};
}

bool socket_transport::peer_shares_our_only_cpu() const noexcept {
    // The peer's process-wide mask stands for the thread that will answer.
    cpu_set_t ours, theirs;
    if (::sched_getaffinity(0, sizeof ours, &ours) != 0 || CPU_COUNT(&ours) != 1)
        return false;
    std::error_code ec;
    auto cred = peer(ec);
    if (ec || cred.pid <= 0)
        return false;  // a peer in another pid namespace shows no pid we could ask about
    return ::sched_getaffinity(cred.pid, sizeof theirs, &theirs) == 0 && CPU_EQUAL(&ours, &theirs);
}

}  // namespace npipe::detail
