// The POSIX side of named pipes' endpoints (core/platform.hpp): Unix sockets at .NET's paths,
// connected and listened on, and the inotify watch a waiting client sleeps on.
#include <errno.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <vector>

#include "core/platform.hpp"
#include "npipe/errors.hpp"
#include "platform/posix/bound_file_watch.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/local_socket.hpp"
#include "transport/posix_shared_memory/shm_transport.hpp"

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

enum class shm_attempt { connected, not_offered, no_pipe, retry, wrong_type, failed };

// An opted-in client's first try: the rendezvous, when it is a socket of the same owner as the
// pipe's socket file and the server behind it is that owner (anyone may create a file in a
// sticky /tmp: an impostor's rendezvous beside a server that offers none is passed over), and,
// with current_user_only, our own user. Otherwise the pipe is the ordinary socket.
std::shared_ptr<transport> connect_shared_memory(const std::string& endpoint, int type,
                                                 const pipe_options& options, shm_attempt& result,
                                                 std::error_code& ec) noexcept {
    result = shm_attempt::not_offered;
    try {
        const auto rendezvous = shared_memory_rendezvous(endpoint);
        struct stat pipe_file {
        }, rendezvous_file{};
        if (::lstat(endpoint.c_str(), &pipe_file) != 0) {
            // Not yet: a server's rendezvous is there before its pipe's file, so only a client
            // that saw no file may miss it; one that went on to connect to the pipe could be
            // in just as the server's both appear, and take the plain socket.
            if (errno == ENOENT)
                result = shm_attempt::no_pipe;
            return nullptr;
        }
        if (!S_ISSOCK(pipe_file.st_mode) || ::lstat(rendezvous.c_str(), &rendezvous_file) != 0 ||
            !S_ISSOCK(rendezvous_file.st_mode) || rendezvous_file.st_uid != pipe_file.st_uid)
            return nullptr;
        std::error_code connect_ec;
        auto fd = connect_once(rendezvous, connect_ec, type);
        if (connect_ec) {
            if (connect_ec == std::error_code(EPROTOTYPE, std::system_category()))
                result = shm_attempt::wrong_type;
            else if (connect_ec == std::error_code(EAGAIN, std::system_category()))
                result = shm_attempt::retry;  // an offering server, busy: wait for it
            return nullptr;                   // a stale file: nobody offers it
        }
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            cred.uid != pipe_file.st_uid || (options.current_user_only && cred.uid != ::geteuid()))
            return nullptr;
        auto t = shm_transport::connect(std::move(fd), options.shared_memory_ring_size, ec);
        result = t ? shm_attempt::connected : shm_attempt::failed;
        return t;
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        result = shm_attempt::failed;
        return nullptr;
    }
}

}  // namespace

std::shared_ptr<transport> connect(const std::string& endpoint, transmission_mode mode,
                                   const pipe_options& options, connect_status& status,
                                   std::error_code& ec) noexcept {
    if (options.shared_memory) {
        shm_attempt result;
        auto t = connect_shared_memory(endpoint, socket_type(mode), options, result, ec);
        switch (result) {
            case shm_attempt::connected:
                status = connect_status::connected;
                return t;
            case shm_attempt::retry:
                status = connect_status::retry;
                ec = errno_code(EAGAIN);
                return nullptr;
            case shm_attempt::no_pipe:
                status = connect_status::retry;
                ec = errno_code(ENOENT);
                return nullptr;
            case shm_attempt::wrong_type:
                status = connect_status::wrong_type;
                ec = errno_code(EPROTOTYPE);
                return nullptr;
            case shm_attempt::failed:
                status = connect_status::failed;
                return nullptr;
            case shm_attempt::not_offered:
                break;
        }
    }
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

// The rendezvous of a server that offers shared memory: a second listening socket, made by
// the same rules as the pipe's (listen_at: safe directories, the same mode and group, another
// user's file never touched) while the server holds the name's liveness lock, and removed
// with the pipe's socket.
struct rendezvous_socket {
    std::string path;
    unique_fd fd;
    struct stat bound {};
    unique_fd either;  ///< epoll: readable when a client is queued on the pipe or here
};

class socket_listener final : public listener {
  public:
    socket_listener(std::string path, unique_fd fd, const struct stat& bound, bool records,
                    rendezvous_socket rendezvous)
        : path_(std::move(path)),
          fd_(std::move(fd)),
          bound_(bound),
          records_(records),
          rendezvous_(std::move(rendezvous)),
          // The pipe's socket, or both it and the rendezvous: a client queued on either wakes
          // a wait.
          watch_(rendezvous_.either ? rendezvous_.either.get() : fd_.get(), path_, bound_) {}
    ~socket_listener() override {
        if (rendezvous_.fd) {
            rendezvous_.fd.reset();
            unlink_if_same(rendezvous_.path, rendezvous_.bound);
        }
        fd_.reset();
        // A file that replaced ours may carry our old inode number: only the watch knows it is
        // not ours. Its lock goes either way.
        unlink_if_same(path_, bound_, !watch_.taken_over());
    }
    handle native() const noexcept override {
        return rendezvous_.either ? rendezvous_.either.get() : fd_.get();
    }

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
        if (rendezvous_.fd) {
            if (auto t = take_hello(ec)) {
                status = accept_status::accepted;
                return t;
            }
            for (;;) {
                unique_fd fd(::accept4(rendezvous_.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
                if (!fd) {
                    if (errno == EINTR)
                        continue;
                    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        ec = errno_code(errno);
                        status = accept_status::out_of_resources;
                        return nullptr;
                    }
                    break;  // none queued there: the pipe's own socket next
                }
                // Mapped now, used only once the core has admitted the client (admit_peer):
                // nothing is read from or written to it before.
                auto t = shm_transport::accept(fd, ec);
                if (t) {
                    status = accept_status::accepted;
                    return t;
                }
                if (ec == std::errc::operation_would_block)
                    park(std::move(fd));  // its hello is not there yet
            }
        }
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
    // A rendezvous client whose hello has not come yet. It is watched beside the listening
    // sockets (a wait wakes when it arrives), for at most hello_wait, at most max_parked at once:
    // a client that connects and stays silent costs a descriptor for a while, never an accept.
    struct parked_client {
        unique_fd fd;
        std::chrono::steady_clock::time_point until;
    };
    static constexpr auto hello_wait = std::chrono::seconds(1);
    static constexpr std::size_t max_parked = 64;

    void park(unique_fd fd) noexcept {
        if (parked_.size() == max_parked)
            unpark(0);  // the oldest goes: its hello is the least likely to come
        epoll_event in{};
        in.events = EPOLLIN;
        if (::epoll_ctl(rendezvous_.either.get(), EPOLL_CTL_ADD, fd.get(), &in) != 0)
            return;  // it cannot be watched: closed, as a client that never sent its hello
        try {
            parked_.push_back({std::move(fd), std::chrono::steady_clock::now() + hello_wait});
        } catch (const std::bad_alloc&) {
            // Dropped (closed on the way out, which also takes it out of the epoll set).
        }
    }
    void unpark(std::size_t i) noexcept { unpark(i, parked_[i].fd.get()); }
    // `fd`: the descriptor as watched (a transport may own it by now).
    void unpark(std::size_t i, int fd) noexcept {
        ::epoll_ctl(rendezvous_.either.get(), EPOLL_CTL_DEL, fd, nullptr);
        parked_.erase(parked_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    // The first parked client whose hello has come; drops those that sent garbage, hung up or
    // stayed silent too long.
    std::shared_ptr<transport> take_hello(std::error_code& ec) noexcept {
        const auto now = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < parked_.size();) {
            const int watched = parked_[i].fd.get();
            auto t = shm_transport::accept(parked_[i].fd, ec);
            if (t) {
                unpark(i, watched);  // the transport owns it now: out of our epoll set
                return t;
            }
            if (ec == std::errc::operation_would_block && now < parked_[i].until)
                ++i;
            else
                unpark(i);
        }
        return nullptr;
    }

    std::string path_;
    unique_fd fd_;
    struct stat bound_;
    bool records_;
    rendezvous_socket rendezvous_;
    std::vector<parked_client> parked_;  ///< after rendezvous_: its epoll set watches them
    bound_file_watch watch_;             ///< after fd_ and rendezvous_: it watches beside them
};

// Offers shared memory beside the pipe's socket, when it can: a rendezvous that cannot be
// made (a path too long, another user's file there) leaves the pipe as it is. Called before
// the pipe's file exists, so that a client that finds the pipe finds its rendezvous too (a
// client that came between the two would settle for the plain socket).
rendezvous_socket offer_shared_memory(const std::string& endpoint, listen_spec spec) {
    rendezvous_socket r;
    // A live server of another program at the pipe's path (no npipe lock, so ours was free)
    // keeps the name: offering beside it would draw its npipe clients to us.
    struct stat there {};
    if (::lstat(endpoint.c_str(), &there) == 0 && S_ISSOCK(there.st_mode) &&
        bound_sockets().contains(endpoint, there))
        return r;
    r.path = shared_memory_rendezvous(endpoint);
    spec.liveness_lock = false;  // the pipe's lock, held, covers it
    spec.before_bind = nullptr;
    std::error_code ec;
    std::string why;
    r.fd = listen_at(r.path, spec, r.bound, ec, why);
    return r;
}

void withdraw(rendezvous_socket& r) noexcept {
    r.either.reset();
    if (r.fd) {
        r.fd.reset();
        unlink_if_same(r.path, r.bound);
    }
}

// Once the pipe listens too: one epoll set for both, or no rendezvous at all.
void watch_both(rendezvous_socket& r, int listen_fd) {
    if (!r.fd)
        return;
    r.either.reset(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event in{};
    in.events = EPOLLIN;
    if (!r.either || ::epoll_ctl(r.either.get(), EPOLL_CTL_ADD, listen_fd, &in) != 0 ||
        ::epoll_ctl(r.either.get(), EPOLL_CTL_ADD, r.fd.get(), &in) != 0)
        withdraw(r);
}

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
    rendezvous_socket rendezvous;
    if (options.shared_memory)
        spec.before_bind = [&, spec] { rendezvous = offer_shared_memory(endpoint, spec); };
    struct stat bound {};
    unique_fd fd;
    try {
        fd = listen_at(endpoint, spec, bound, ec, why);
    } catch (...) {
        withdraw(rendezvous);
        throw;
    }
    if (ec) {
        withdraw(rendezvous);
        return nullptr;
    }
    try {
        watch_both(rendezvous, fd.get());
        return std::make_unique<socket_listener>(endpoint, std::move(fd), bound,
                                                 mode == transmission_mode::message,
                                                 std::move(rendezvous));
    } catch (...) {
        withdraw(rendezvous);
        unlink_if_same(endpoint, bound);
        throw;
    }
}

}  // namespace npipe::detail::platform
