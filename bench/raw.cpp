// Baselines that are nothing but system calls: Unix domain sockets (SOCK_STREAM and
// SOCK_SEQPACKET), TCP over loopback, and a pair of pipe2() pipes. These are the floor every
// IPC library sits on; docs/benchmarks.md reports each system as a ratio to uds-stream.
//
//   bench_raw uds-stream|uds-seqpacket|tcp|pipe TEST [options]   (see harness.hpp)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "common/fd_io.hpp"
#include "common/harness.hpp"

namespace npipe::bench {
namespace {

std::string temp_dir() {
    const char* t = std::getenv("TMPDIR");
    std::string dir = t && *t ? t : "/tmp";
    if (dir.back() != '/')
        dir += '/';
    return dir;
}

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw bench_error("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

class socket_listener : public listener {
  public:
    socket_listener(unique_fd fd, std::string endpoint, std::string unlink_path, const config& cfg,
                    bool tcp)
        : fd_(std::move(fd)),
          endpoint_(std::move(endpoint)),
          unlink_(std::move(unlink_path)),
          buffer_(cfg.buffer_size),
          tcp_(tcp) {}
    ~socket_listener() override {
        if (!unlink_.empty())
            ::unlink(unlink_.c_str());
    }
    std::string endpoint() const override { return endpoint_; }
    std::unique_ptr<connection> accept(int) override {
        int fd;
        while ((fd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC)) < 0)
            if (errno != EINTR)
                throw_errno("accept");
        unique_fd conn(fd);
        set_socket_buffers(fd, buffer_);
        if (tcp_) {
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        return std::make_unique<fd_connection>(std::move(conn));
    }

  private:
    unique_fd fd_;
    std::string endpoint_, unlink_;
    std::size_t buffer_;
    bool tcp_;
};

class unix_transport : public transport {
  public:
    explicit unix_transport(int type) : type_(type) {}
    bool message_oriented() const override { return type_ == SOCK_SEQPACKET; }

    std::unique_ptr<listener> listen(const config& cfg) override {
        auto path = temp_dir() + "npipe-bench-" + cfg.system + "-" + std::to_string(::getpid());
        auto addr = unix_address(path);
        unique_fd fd(::socket(AF_UNIX, type_ | SOCK_CLOEXEC, 0));
        if (!fd)
            throw_errno("socket");
        ::unlink(path.c_str());
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw_errno("bind " + path);
        if (::listen(fd.get(), SOMAXCONN) != 0)
            throw_errno("listen");
        return std::make_unique<socket_listener>(std::move(fd), path, path, cfg, false);
    }

    std::unique_ptr<connection> connect(const std::string& path, const config& cfg) override {
        auto addr = unix_address(path);
        unique_fd fd(::socket(AF_UNIX, type_ | SOCK_CLOEXEC, 0));
        if (!fd)
            throw_errno("socket");
        set_socket_buffers(fd.get(), cfg.buffer_size);
        while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            if (errno != EINTR)
                throw_errno("connect " + path);
        return std::make_unique<fd_connection>(std::move(fd));
    }

  private:
    int type_;
};

class tcp_transport : public transport {
  public:
    std::unique_ptr<listener> listen(const config& cfg) override {
        unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd)
            throw_errno("socket");
        int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only, never a real network
        addr.sin_port = 0;
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw_errno("bind 127.0.0.1");
        socklen_t len = sizeof addr;
        if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw_errno("getsockname");
        if (::listen(fd.get(), SOMAXCONN) != 0)
            throw_errno("listen");
        return std::make_unique<socket_listener>(
            std::move(fd), std::to_string(ntohs(addr.sin_port)), "", cfg, true);
    }

    std::unique_ptr<connection> connect(const std::string& port, const config& cfg) override {
        unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd)
            throw_errno("socket");
        set_socket_buffers(fd.get(), cfg.buffer_size);
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
        while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            if (errno != EINTR)
                throw_errno("connect 127.0.0.1:" + port);
        return std::make_unique<fd_connection>(std::move(fd));
    }
};

/// Two pipes made before the fork: one per direction. There is nothing to connect, so the
/// listener and the client each take their ends once.
class pipe_transport : public transport {
  public:
    void check(const config& cfg) const override {
        if (cfg.test == test_kind::connect)
            throw bench_error("a pipe pair has no connection to set up (no connect test)");
        if (cfg.clients != 1)
            throw bench_error("one pipe pair serves one client (--clients 1)");
    }
    void before_fork(const config& cfg) override {
        int up[2], down[2];
        if (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(down, O_CLOEXEC) != 0)
            throw_errno("pipe2");
        up_rd_.reset(up[0]);
        up_wr_.reset(up[1]);
        down_rd_.reset(down[0]);
        down_wr_.reset(down[1]);
        if (cfg.buffer_size) {
            for (int fd : {up[0], down[0]})
                if (::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(cfg.buffer_size)) < 0)
                    throw_errno("fcntl(F_SETPIPE_SZ)");
        }
    }
    // Each process drops the other's ends, so a dead peer reads as end of stream.
    void in_process(role r, const config&) override {
        if (r == role::server) {
            up_wr_.reset();
            down_rd_.reset();
        } else {
            up_rd_.reset();
            down_wr_.reset();
        }
    }

    std::unique_ptr<listener> listen(const config&) override {
        struct pipe_listener : listener {
            pipe_transport& t;
            explicit pipe_listener(pipe_transport& p) : t(p) {}
            std::string endpoint() const override { return "pipe2"; }
            std::unique_ptr<connection> accept(int) override {
                return std::make_unique<fd_connection>(std::move(t.up_rd_), std::move(t.down_wr_));
            }
        };
        return std::make_unique<pipe_listener>(*this);
    }

    std::unique_ptr<connection> connect(const std::string&, const config&) override {
        return std::make_unique<fd_connection>(std::move(down_rd_), std::move(up_wr_));
    }

  private:
    unique_fd up_rd_, up_wr_, down_rd_, down_wr_;  // up: client to server
};

}  // namespace
}  // namespace npipe::bench

int main(int argc, char** argv) {
    using namespace npipe::bench;
    std::string system = argc > 1 ? argv[1] : "";
    std::unique_ptr<transport> t;
    if (system == "uds-stream")
        t = std::make_unique<unix_transport>(SOCK_STREAM);
    else if (system == "uds-seqpacket")
        t = std::make_unique<unix_transport>(SOCK_SEQPACKET);
    else if (system == "tcp")
        t = std::make_unique<tcp_transport>();
    else if (system == "pipe")
        t = std::make_unique<pipe_transport>();
    if (!t) {
        std::cerr << "usage: " << argv[0]
                  << " uds-stream|uds-seqpacket|tcp|pipe latency|throughput|messages|connect"
                     " [--size BYTES] [--count N] [--clients N] [--buffer-size BYTES]"
                     " [--cpu-server N] [--cpu-client N] [--json]\n";
        return 2;
    }
    return run_main(argc - 1, argv + 1, system, *t);
}
