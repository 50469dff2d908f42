#include "fd_io.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace npipe::bench {

void throw_errno(const std::string& what) {
    throw bench_error(what + ": " + std::strerror(errno));
}

void fd_connection::write_all(std::span<const std::byte> data) {
    while (!data.empty()) {
        auto n = socket_ ? ::send(write_fd(), data.data(), data.size(), MSG_NOSIGNAL)
                         : ::write(write_fd(), data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw_errno("write");
        }
        data = data.subspan(static_cast<std::size_t>(n));
    }
}

std::size_t fd_connection::read_some(std::span<std::byte> buffer) {
    for (;;) {
        auto n = ::read(read_fd(), buffer.data(), buffer.size());
        if (n >= 0)
            return static_cast<std::size_t>(n);
        if (errno != EINTR)
            throw_errno("read");
    }
}

void set_socket_buffers(int fd, std::size_t size) {
    if (size == 0)
        return;
    int v = static_cast<int>(size);
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) != 0)
        throw_errno("setsockopt(SO_SNDBUF/SO_RCVBUF)");
}

}  // namespace npipe::bench
