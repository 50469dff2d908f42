// Plain-syscall connections for the baselines that are just file descriptors (Unix sockets,
// TCP, pipe pairs): one read() or write() per call, as a hand-written program would do.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "harness.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::bench {

using npipe::detail::unique_fd;

/// Throws bench_error "<what>: <strerror(errno)>".
[[noreturn]] void throw_errno(const std::string& what);

/// A connection over one socket, or over a read fd and a write fd (a pipe pair).
class fd_connection : public connection {
  public:
    /// A socket: reads and writes on the same descriptor, writes with MSG_NOSIGNAL.
    explicit fd_connection(unique_fd socket) : rd_(std::move(socket)), socket_(true) {}
    /// A pipe pair: reads from `rd`, writes to `wr` (SIGPIPE is ignored by the programs).
    fd_connection(unique_fd rd, unique_fd wr)
        : rd_(std::move(rd)), wr_(std::move(wr)), socket_(false) {}

    void write_all(std::span<const std::byte> data) override;
    std::size_t read_some(std::span<std::byte> buffer) override;

    int read_fd() const { return rd_.get(); }
    int write_fd() const { return socket_ ? rd_.get() : wr_.get(); }

  private:
    unique_fd rd_, wr_;
    bool socket_;
};

/// Sets SO_SNDBUF and SO_RCVBUF to `size` (nothing when 0).
void set_socket_buffers(int fd, std::size_t size);

}  // namespace npipe::bench
