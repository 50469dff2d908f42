#include "socket_transports.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "fd_io.hpp"

namespace npipe::bench {

namespace {

/// A listening socket (Unix or TCP): accept() hands out plain-syscall connections.
class socket_listener : public listener {
  public:
    /// `unlink_path`: the file to remove at the end (empty for TCP); `tcp`: set TCP_NODELAY.
    socket_listener(unique_fd fd, std::string endpoint, std::string unlink_path, const config& cfg,
                    bool tcp)
        : fd_(std::move(fd)),
          endpoint_(std::move(endpoint)),
          unlink_(std::move(unlink_path)),
          buffer_(cfg.buffer_size),
          tcp_(tcp) {}
    /// Removes the socket file, if any.
    ~socket_listener() override;
    std::string endpoint() const override { return endpoint_; }
    std::unique_ptr<connection> accept(int) override;

  private:
    unique_fd fd_;
    std::string endpoint_, unlink_;
    std::size_t buffer_;
    bool tcp_;
};

socket_listener::~socket_listener() {
    if (!unlink_.empty())
        ::unlink(unlink_.c_str());
}

std::unique_ptr<connection> socket_listener::accept(int) {
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

}  // namespace

std::unique_ptr<transport> make_unix_socket_transport(bool seqpacket) {
    return std::make_unique<unix_transport>(seqpacket ? SOCK_SEQPACKET : SOCK_STREAM);
}

std::unique_ptr<transport> make_tcp_transport() {
    return std::make_unique<tcp_transport>();
}

}  // namespace npipe::bench
