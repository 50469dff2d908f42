// The POSIX side of named pipes' endpoints (core/platform.hpp): Unix sockets at .NET's paths,
// connected and listened on, and the inotify watch a waiting client sleeps on.
#include <errno.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <vector>

#include "core/platform.hpp"
#include "npipe/errors.hpp"
#include "platform/posix/bound_file_watch.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/local_socket.hpp"

namespace npipe::detail::platform {

std::string host_name() {
    char host[HOST_NAME_MAX + 1] = {};
    return ::gethostname(host, sizeof host) == 0 ? std::string(host) : std::string();
}

bool is_current_user(const peer_credentials& peer) noexcept {
    return peer.uid == ::geteuid();
}

std::string user_name(const peer_credentials& peer) {
    std::vector<char> buffer(4096);
    passwd entry{};
    passwd* found = nullptr;
    while (::getpwuid_r(peer.uid, &entry, buffer.data(), buffer.size(), &found) == ERANGE)
        buffer.resize(buffer.size() * 2);
    return found ? found->pw_name : "";
}

namespace {

int socket_type(transmission_mode mode) noexcept {
    return mode == transmission_mode::message ? SOCK_SEQPACKET : SOCK_STREAM;
}

}  // namespace

std::shared_ptr<transport> connect(const std::string& endpoint, transmission_mode mode,
                                   const pipe_options& options, connect_status& status,
                                   std::error_code& ec) noexcept {
    auto fd = connect_once(endpoint, ec, socket_type(mode));
    if (ec) {
        // EPROTOTYPE: the listener's socket type is the other one. Nothing was sent, so the
        // discovery costs a server of the other type nothing.
        status = ec == std::error_code(EPROTOTYPE, std::system_category())
                     ? connect_status::wrong_type
                 : worth_retrying(ec) ? connect_status::retry
                                      : connect_status::failed;
        if (ec.category() == std::system_category())
            ec = errno_code(ec.value());
        return nullptr;
    }
    set_buffer_sizes(fd.get(), options.in_buffer_size, options.out_buffer_size);
    auto t = make_socket_transport(std::move(fd), mode == transmission_mode::message, ec);
    status = ec ? connect_status::failed : connect_status::connected;
    return t;
}

namespace {

class inotify_watch final : public endpoint_watch {
  public:
    explicit inotify_watch(unique_fd fd) noexcept : fd_(std::move(fd)) {}
    handle native() const noexcept override { return fd_.get(); }
    void drain() noexcept override { drain_events(fd_.get()); }

  private:
    unique_fd fd_;
};

class socket_listener final : public listener {
  public:
    socket_listener(std::string path, unique_fd fd, const struct stat& bound, bool records)
        : path_(std::move(path)),
          fd_(std::move(fd)),
          bound_(bound),
          records_(records),
          watch_(fd_.get(), path_, bound_) {}
    ~socket_listener() override {
        fd_.reset();
        // A file that replaced ours may carry our old inode number: only the watch knows it is
        // not ours. Its lock goes either way.
        unlink_if_same(path_, bound_, !watch_.taken_over());
    }
    handle native() const noexcept override { return fd_.get(); }

    std::unique_ptr<accept_wait> begin_wait() override {
        // Every wait shares the listener's watch: two descriptors per name, not per waiting
        // instance.
        struct shared_wait final : accept_wait {
            explicit shared_wait(bound_file_watch& w) noexcept : watch(w) {}
            handle native() const noexcept override { return watch.fd(); }
            bool replaced() noexcept override { return watch.replaced(); }
            bound_file_watch& watch;
        };
        return std::make_unique<shared_wait>(watch_);
    }

    std::shared_ptr<transport> accept(const pipe_options& options, accept_status& status,
                                      std::error_code& ec) noexcept override {
        for (;;) {
            unique_fd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (fd) {
                set_buffer_sizes(fd.get(), options.in_buffer_size, options.out_buffer_size);
                auto t = make_socket_transport(std::move(fd), records_, ec);
                status = ec ? accept_status::failed : accept_status::accepted;
                return t;
            }
            if (errno == EINTR)
                continue;
            ec = errno_code(errno);
            status = errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED
                         ? accept_status::none_queued
                     : errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM
                         ? accept_status::out_of_resources
                         : accept_status::failed;
            return nullptr;
        }
    }

  private:
    std::string path_;
    unique_fd fd_;
    struct stat bound_;
    bool records_;
    bound_file_watch watch_;  ///< after fd_: it watches beside it
};

}  // namespace

std::unique_ptr<endpoint_watch> watch_endpoint(const std::string& endpoint) noexcept {
    auto fd = watch_socket_directory(endpoint);
    if (!fd)
        return nullptr;
    try {
        return std::make_unique<inotify_watch>(std::move(fd));
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

std::unique_ptr<listener> listen(const std::string& endpoint, transmission_mode mode,
                                 const pipe_options& options, std::error_code& ec,
                                 std::string& why) {
    // The socket file's mode and group hold from the moment it exists: socket_mode, else 0600
    // with current_user_only, else the umask decides, as with .NET (docs/security.md).
    listen_spec spec;
    spec.type = socket_type(mode);
    spec.mode = options.socket_mode;
    if (!spec.mode && options.current_user_only)
        spec.mode = 0600;
    spec.group = options.socket_group;
    struct stat bound {};
    auto fd = listen_at(endpoint, spec, bound, ec, why);
    if (ec)
        return nullptr;
    try {
        return std::make_unique<socket_listener>(endpoint, std::move(fd), bound,
                                                 mode == transmission_mode::message);
    } catch (...) {
        unlink_if_same(endpoint, bound);
        throw;
    }
}

}  // namespace npipe::detail::platform
