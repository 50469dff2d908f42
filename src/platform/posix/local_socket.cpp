#include "platform/posix/local_socket.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "npipe/errors.hpp"
#include "npipe/pipe_stream.hpp"
#include "platform/posix/errno_code.hpp"

namespace npipe::detail {

std::string temp_directory() {
    const char* dir = std::getenv("TMPDIR");
    std::string result = dir && *dir ? dir : "/tmp/";
    if (result.back() != '/')
        result += '/';
    return result;
}

namespace {

bool make_address(const std::string& path, sockaddr_un& addr, socklen_t& len) {
    if (path.size() + 1 > sizeof addr.sun_path)
        return false;
    std::memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return true;
}

constexpr unsigned char tcp_listen_state = 10;  // TCP_LISTEN, which unix_diag reuses

struct diag_entry {
    std::string path;   // empty for unnamed sockets; abstract names are skipped
    std::uint32_t ino;  // the bound file's inode (low 32 bits, as unix_diag reports it)
    std::uint32_t dev;  // the bound file's device as the kernel keeps it: major << 20 | minor
    bool has_vfs;
    unsigned char state;
};

// Dumps every Unix socket of this network namespace through NETLINK_SOCK_DIAG. Returns false
// when the kernel cannot answer (unix_diag missing), so callers fall back to /proc/net/unix.
bool unix_diag_dump(const std::function<void(const diag_entry&)>& visit) {
    unique_fd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!nl)
        return false;
    struct {
        nlmsghdr header;
        unix_diag_req request;
    } message{};
    message.header.nlmsg_len = sizeof message;
    message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    message.request.sdiag_family = AF_UNIX;
    message.request.udiag_states = ~0u;
    message.request.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(nl.get(), &message, sizeof message, 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof kernel) < 0)
        return false;

    alignas(nlmsghdr) static thread_local char buffer[32768];
    for (;;) {
        ssize_t n = ::recv(nl.get(), buffer, sizeof buffer, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        auto* h = reinterpret_cast<nlmsghdr*>(buffer);
        for (auto left = static_cast<unsigned>(n); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return true;
            if (h->nlmsg_type == NLMSG_ERROR)
                return false;
            auto* msg = static_cast<unix_diag_msg*>(NLMSG_DATA(h));
            diag_entry entry{{}, 0, 0, false, msg->udiag_state};
            auto attr_len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *msg));
            for (auto* a = reinterpret_cast<rtattr*>(msg + 1); RTA_OK(a, attr_len);
                 a = RTA_NEXT(a, attr_len)) {
                if (a->rta_type == UNIX_DIAG_NAME) {
                    auto* name = static_cast<const char*>(RTA_DATA(a));
                    auto size = RTA_PAYLOAD(a);
                    if (size > 0 && name[0] != '\0')
                        entry.path.assign(name, strnlen(name, size));
                } else if (a->rta_type == UNIX_DIAG_VFS) {
                    unix_diag_vfs vfs;
                    std::memcpy(&vfs, RTA_DATA(a), sizeof vfs);
                    entry.ino = vfs.udiag_vfs_ino;
                    entry.dev = vfs.udiag_vfs_dev;
                    entry.has_vfs = true;
                }
            }
            visit(entry);
        }
    }
}

}  // namespace

// unix_diag reports the kernel's internal dev_t (MKDEV: major << 20 | minor), not the encoding
// stat() returns (0xfe00 for 254:0): compare in the kernel's terms, or every socket on a disk
// with a non-zero major number looks stale.
static std::uint32_t kernel_dev(dev_t dev) {
    return static_cast<std::uint32_t>(major(dev)) << 20 |
           (static_cast<std::uint32_t>(minor(dev)) & 0xfffffu);
}

namespace {

// --- Liveness across network namespaces --------------------------------------------------------
//
// sock_diag and /proc/net/unix see only the caller's network namespace, but containers that
// share /tmp see each other's socket files: a live server in another namespace would look stale
// and lose its name. So an npipe server also holds an OFD write lock on a file beside its socket
// for the socket's whole life. Locks belong to the inode, which every namespace shares, and the
// kernel drops the lock when the server dies, however it dies.

std::string lock_path_of(const std::string& socket_path) {
    return socket_path + ".npipe-lock";
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The lock file, held: unlinked (while still locked, so a newcomer that opened it sees it
// replaced and tries again) and closed on destruction.
struct liveness_lock {
    std::string path;
    unique_fd fd;
    struct stat file {};

    liveness_lock() = default;
    liveness_lock(liveness_lock&&) = default;
    liveness_lock& operator=(liveness_lock&&) = default;
    ~liveness_lock() {
        if (!fd)
            return;
        struct stat now {};
        if (::lstat(path.c_str(), &now) == 0 && same_file(now, file))
            ::unlink(path.c_str());
    }
};

// The locks of this process's live listeners, by their socket file's identity; released by
// unlink_if_same when the listener goes.
std::mutex held_mutex;
std::map<std::pair<dev_t, ino_t>, liveness_lock>& held_locks() {
    static std::map<std::pair<dev_t, ino_t>, liveness_lock> locks;
    return locks;
}

struct flock write_lock_request() {
    struct flock request {};
    request.l_type = F_WRLCK;
    request.l_whence = SEEK_SET;
    return request;  // l_start 0, l_len 0: the whole file
}

// Takes the lock beside `socket_path`: name_in_use when another server holds it;
// access_denied / not_a_socket (with `why`) when something we would not trust is there.
liveness_lock take_liveness_lock(const std::string& socket_path, std::error_code& ec,
                                 std::string& why) {
    liveness_lock lock;
    lock.path = lock_path_of(socket_path);
    // A few rounds cover a server that unlinks its lock file between our open and our lock.
    for (int attempt = 0; attempt < 4; ++attempt) {
        lock.fd.reset(::open(lock.path.c_str(),
                             O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600));
        struct stat there {};
        bool exists = ::lstat(lock.path.c_str(), &there) == 0;
        if (!lock.fd || ::fstat(lock.fd.get(), &lock.file) != 0 || !S_ISREG(lock.file.st_mode) ||
            lock.file.st_uid != ::geteuid()) {
            int error = errno;
            lock.fd.reset();
            if (exists && S_ISLNK(there.st_mode)) {
                ec = errc::not_a_socket;
                why =
                    "a symbolic link is at " + lock.path + "; npipe neither follows nor removes it";
            } else if (exists && S_ISREG(there.st_mode) && there.st_uid != ::geteuid()) {
                ec = errc::access_denied;
                why = "the lock file " + lock.path + " belongs to uid " +
                      std::to_string(there.st_uid) + "; npipe never uses another user's";
            } else if (exists && !S_ISREG(there.st_mode)) {
                ec = errc::not_a_socket;
                why = "something other than npipe's lock file is at " + lock.path;
            } else {
                // A missing or unwritable directory: the same error bind() would report.
                ec = errno_code(error ? error : EACCES);
            }
            return {};
        }
        struct flock request = write_lock_request();
        if (::fcntl(lock.fd.get(), F_OFD_SETLK, &request) != 0) {
            if (errno != EAGAIN && errno != EACCES) {
                ec = errno_code(errno);
                lock.fd.reset();
                return {};
            }
            // Held: a live server, unless its owner just unlinked the file on its way out.
            lock.fd.reset();
            if (exists && same_file(there, lock.file)) {
                ec = errc::name_in_use;
                return {};
            }
            continue;
        }
        if (exists && same_file(there, lock.file)) {
            ec.clear();
            return lock;
        }
        lock.fd.reset();  // replaced after we opened it: that file is nobody's lock any more
    }
    ec = errc::name_in_use;
    return {};
}

// Whether /proc/locks lists a lock on this inode (for callers who may not open the lock file;
// it shows the locks of processes in our PID namespace).
bool proc_locks_has(const struct stat& file) {
    std::ifstream in("/proc/locks");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string field;
        while (fields >> field) {
            unsigned major_number = 0, minor_number = 0;
            unsigned long long inode = 0;
            char tail = 0;
            if (std::sscanf(field.c_str(), "%x:%x:%llu%c", &major_number, &minor_number, &inode,
                            &tail) == 3) {
                if (inode == file.st_ino && major_number == major(file.st_dev) &&
                    minor_number == minor(file.st_dev))
                    return true;
                break;
            }
        }
    }
    return false;
}

// Whether a server holds the lock beside the socket `socket_path`, owned by `owner`. A lock file
// of anyone else proves nothing (anybody could make one in a sticky directory).
bool lock_is_held(const std::string& socket_path, uid_t owner) {
    auto path = lock_path_of(socket_path);
    struct stat there {};
    if (::lstat(path.c_str(), &there) != 0 || !S_ISREG(there.st_mode) || there.st_uid != owner)
        return false;
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd)
        return proc_locks_has(there);
    struct stat opened {};
    if (::fstat(fd.get(), &opened) != 0 || !same_file(opened, there))
        return false;
    // F_OFD_GETLK only asks: it takes nothing, so checking never blocks the server's restart.
    struct flock request = write_lock_request();
    return ::fcntl(fd.get(), F_OFD_GETLK, &request) == 0 && request.l_type != F_UNLCK;
}

}  // namespace

bound_sockets::bound_sockets() {
    by_inode_ = unix_diag_dump([&](const diag_entry& e) {
        if (e.has_vfs)
            files_.insert({e.dev, e.ino});
    });
    if (by_inode_)
        return;
    // /proc/net/unix names sockets by the path they were bound to, not by inode: a socket
    // whose file was replaced can look live. Erring that way keeps a live server's name safe.
    std::ifstream proc("/proc/net/unix");
    std::string line;
    while (std::getline(proc, line)) {
        auto space = line.rfind(' ');
        if (space != std::string::npos)
            paths_.insert(line.substr(space + 1));
    }
}

bool bound_sockets::contains(const std::string& path, const struct stat& file) const {
    if (by_inode_)
        return files_.count({kernel_dev(file.st_dev), static_cast<std::uint32_t>(file.st_ino)});
    return paths_.count(path) > 0;
}

bool is_live_socket(const std::string& path, const struct stat& file, const bound_sockets& bound) {
    return lock_is_held(path, file.st_uid) || bound.contains(path, file);
}

bool is_live_socket(const std::string& path, const struct stat& file) {
    // The lock first: it answers without asking the kernel for every socket.
    return lock_is_held(path, file.st_uid) || bound_sockets().contains(path, file);
}

// sock_diag, or /proc/net/unix: this network namespace only.
static bool kernel_sees_listener(const std::string& path, const struct stat& file) {
    return bound_sockets().contains(path, file);
}

std::vector<std::string> listening_socket_paths() {
    std::vector<std::string> paths;
    bool answered = unix_diag_dump([&](const diag_entry& e) {
        if (e.state == tcp_listen_state && !e.path.empty())
            paths.push_back(e.path);
    });
    if (answered)
        return paths;
    std::ifstream proc("/proc/net/unix");
    std::string line;
    std::getline(proc, line);  // header
    while (std::getline(proc, line)) {
        std::istringstream fields(line);
        std::string num, refcount, protocol, flags, type, st, inode, path;
        fields >> num >> refcount >> protocol >> flags >> type >> st >> inode >> path;
        // __SO_ACCEPTCON (0x10000) in Flags marks a listening socket.
        if (!path.empty() && path[0] == '/' && (std::stoul(flags, nullptr, 16) & 0x10000))
            paths.push_back(path);
    }
    return paths;
}

namespace {
constexpr std::string_view rendezvous_suffix = ".npipe-shm";
}

std::string shared_memory_rendezvous(const std::string& path) {
    return path + std::string(rendezvous_suffix);
}

bool is_shared_memory_rendezvous(const std::string& path) {
    if (!path.ends_with(rendezvous_suffix))
        return false;
    struct stat pipe_file {};
    auto pipe_path = path.substr(0, path.size() - rendezvous_suffix.size());
    return ::lstat(pipe_path.c_str(), &pipe_file) == 0 && S_ISSOCK(pipe_file.st_mode);
}

void unlink_if_same(const std::string& path, const struct stat& bound, bool remove_file) noexcept {
    struct stat now {};
    if (remove_file && ::lstat(path.c_str(), &now) == 0 && same_file(now, bound))
        ::unlink(path.c_str());
    // The listener is gone (or going): its lock goes after the file, never before, so the name
    // never looks stale while the file is there.
    liveness_lock released;
    {
        std::lock_guard guard(held_mutex);
        auto& locks = held_locks();
        if (auto it = locks.find({bound.st_dev, bound.st_ino}); it != locks.end()) {
            released = std::move(it->second);
            locks.erase(it);
        }
    }
}

namespace {

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string ancestors_problem(std::string dir, int links_followed = 0);

// The reason one directory lets another user swap what is inside it, or "".
std::string directory_problem(const std::string& dir, int links_followed) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        return {};  // bind() will report a missing directory as it is
    if (S_ISLNK(st.st_mode)) {
        // A link's bits mean nothing, but its owner can point it anywhere at any time (even
        // in a sticky directory, where only they may replace it): the socket would then be
        // made, or found, wherever they like.
        if (st.st_uid != 0 && st.st_uid != ::geteuid())
            return "symbolic link " + dir + " on the path belongs to uid " +
                   std::to_string(st.st_uid) +
                   " (neither you nor root), who could point it "
                   "elsewhere";
        // Whatever it points to, through however many links, must be as safe.
        if (++links_followed > 40)
            return "too many symbolic links on the path at " + dir;
        std::string target(PATH_MAX, '\0');
        auto n = ::readlink(dir.c_str(), target.data(), target.size());
        if (n <= 0)
            return {};
        target.resize(static_cast<std::size_t>(n));
        if (target[0] != '/')
            target = parent_of(dir) + "/" + target;
        return ancestors_problem(target, links_followed);
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        return "directory " + dir + " belongs to uid " + std::to_string(st.st_uid) +
               " (neither you nor root), who could replace the socket file";
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        return "directory " + dir + " is writable by " +
               ((st.st_mode & S_IWOTH) ? "all users" : "its group") +
               " without the sticky bit, so another user could replace the socket file";
    return {};
}

std::string ancestors_problem(std::string dir, int links_followed) {
    for (;;) {
        if (auto why = directory_problem(dir, links_followed); !why.empty())
            return why;
        if (dir == "/" || dir == ".")
            return {};
        dir = parent_of(dir);
    }
}

std::string owner_text(uid_t uid) {
    return "uid " + std::to_string(uid);
}

}  // namespace

std::string unsafe_directory_reason(const std::string& path) {
    std::string dir = parent_of(path);
    // The path as written: whoever may write a directory on it could swap a component (a link
    // included). The path as resolved: where the file really goes.
    if (auto why = ancestors_problem(dir); !why.empty())
        return why;
    if (char* real = ::realpath(dir.c_str(), nullptr)) {
        std::string resolved = real;
        std::free(real);
        if (resolved != dir)
            return ancestors_problem(resolved);
    }
    return {};
}

unique_fd listen_at(const std::string& path, std::optional<mode_t> mode, struct stat& bound,
                    std::error_code& ec, int type) {
    listen_spec spec;
    spec.type = type;
    spec.mode = mode;
    std::string why;
    return listen_at(path, spec, bound, ec, why);
}

unique_fd listen_at(const std::string& path, const listen_spec& spec, struct stat& bound,
                    std::error_code& ec, std::string& why) {
    why.clear();
    sockaddr_un addr;
    socklen_t len;
    if (!make_address(path, addr, len)) {
        ec = errc::path_too_long;
        return {};
    }
    if (spec.mode && (*spec.mode & ~mode_t{0777})) {
        ec = errc::invalid_argument;
        why = "socket mode must be within 0777";
        return {};
    }
    if (why = unsafe_directory_reason(path); !why.empty()) {
        ec = errc::access_denied;
        return {};
    }
    // Taken before anything else: while we hold it no other npipe server, in any network
    // namespace, is alive at this path, so a socket there that the kernel (which sees only our
    // namespace) calls stale really is one, as far as npipe servers go.
    liveness_lock lock;
    if (spec.liveness_lock) {
        lock = take_liveness_lock(path, ec, why);
        if (ec)
            return {};
    }
    if (spec.before_bind)
        spec.before_bind();
    // With a group to give, the file starts as its owner's only: until chown it carries our own
    // group, whose members must not get the group bits meant for another group.
    std::optional<mode_t> first_mode = spec.mode;
    if (spec.group)
        first_mode = spec.mode ? (*spec.mode & 0700) : mode_t{0600};
    // A crashed server's file is removed and the bind retried; a few rounds cover a race with
    // another process doing the same, without looping forever against one that keeps winning.
    for (int attempt = 0; attempt < 4; ++attempt) {
        unique_fd fd(::socket(AF_UNIX, spec.type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd) {
            ec = errno_code(errno);
            return {};
        }
        // Linux creates the socket file with the socket inode's mode minus the umask, so the
        // file never exists with looser permissions than `first_mode`, not even for an instant.
        if (first_mode)
            ::fchmod(fd.get(), *first_mode);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0) {
            if (::lstat(path.c_str(), &bound) != 0) {
                ec = errno_code(errno);
                return {};
            }
            // The directories are ours, root's or sticky, so nobody else can swap the file
            // between bind and these calls.
            if (spec.group && ::lchown(path.c_str(), static_cast<uid_t>(-1), *spec.group) != 0) {
                ec = errno_code(errno);
                why = "cannot give the socket file to group " + std::to_string(*spec.group) +
                      " (a non-root user may only use groups it belongs to)";
                unlink_if_same(path, bound);
                return {};
            }
            // The umask may have taken bits the caller asked for; give them back exactly.
            auto wanted = spec.group ? std::optional<mode_t>(spec.mode.value_or(0660)) : spec.mode;
            if (wanted && ((bound.st_mode & 07777) != *wanted || spec.group)) {
                if (::chmod(path.c_str(), *wanted) != 0) {
                    ec = errno_code(errno);
                    unlink_if_same(path, bound);
                    return {};
                }
            }
            if (::lstat(path.c_str(), &bound) != 0) {
                ec = errno_code(errno);
                return {};
            }
            if (::listen(fd.get(), SOMAXCONN) != 0) {
                ec = errno_code(errno);
                unlink_if_same(path, bound);
                return {};
            }
            if (lock.fd) {
                std::lock_guard guard(held_mutex);
                held_locks()[{bound.st_dev, bound.st_ino}] = std::move(lock);
            }
            ec.clear();
            return fd;
        }
        if (errno != EADDRINUSE) {
            ec = errno_code(errno);
            return {};
        }
        struct stat existing {};
        if (::lstat(path.c_str(), &existing) != 0) {
            if (errno == ENOENT)
                continue;  // removed under us: bind again
            ec = errno_code(errno);
            return {};
        }
        if (S_ISLNK(existing.st_mode)) {
            ec = errc::not_a_socket;
            why = "a symbolic link is at " + path + " (owned by " + owner_text(existing.st_uid) +
                  "); npipe neither follows nor removes it";
            return {};
        }
        if (!S_ISSOCK(existing.st_mode)) {
            ec = errc::not_a_socket;
            why = "npipe leaves it in place";  // the error names the path and what is there
            return {};
        }
        // Our own lock would make it look live: ask the kernel (another npipe server at this
        // path would have held the lock already).
        bool live = existing.st_uid == ::geteuid() ? kernel_sees_listener(path, existing)
                                                   : is_live_socket(path, existing);
        if (existing.st_uid != ::geteuid()) {
            ec = live ? std::error_code(errc::name_in_use) : std::error_code(errc::access_denied);
            why = std::string(live ? "a server" : "a stale socket") + " of " +
                  owner_text(existing.st_uid) + " is at " + path +
                  "; npipe never removes another user's socket";
            return {};
        }
        if (live) {
            ec = errc::name_in_use;
            return {};
        }
        unlink_if_same(path, existing);
    }
    ec = errc::name_in_use;
    return {};
}

unique_fd connect_once(const std::string& path, std::error_code& ec, int type) {
    sockaddr_un addr;
    socklen_t len;
    if (!make_address(path, addr, len)) {
        ec = errc::path_too_long;
        return {};
    }
    // Non-blocking, so a full backlog answers EAGAIN (retry later) instead of blocking in a
    // call that close() could not interrupt.
    unique_fd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        ec = {errno, std::system_category()};
        return {};
    }
    while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
        if (errno == EINTR)
            continue;
        ec = {errno, std::system_category()};
        return {};
    }
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    ec.clear();
    return fd;
}

void set_buffer_sizes(int fd, std::size_t in_size, std::size_t out_size) noexcept {
    // The plain options are capped at net.core.rmem_max / wmem_max; the FORCE ones are not, but
    // need CAP_NET_ADMIN. Try them first and fall back silently: the size is a hint either way.
    auto set = [fd](int force, int plain, std::size_t size) {
        int v = static_cast<int>(std::min<std::size_t>(size, INT_MAX / 2));
        if (::setsockopt(fd, SOL_SOCKET, force, &v, sizeof v) != 0)
            ::setsockopt(fd, SOL_SOCKET, plain, &v, sizeof v);
    };
    if (in_size)
        set(SO_RCVBUFFORCE, SO_RCVBUF, in_size);
    if (out_size)
        set(SO_SNDBUFFORCE, SO_SNDBUF, out_size);
}

std::shared_ptr<transport> make_socket_transport(unique_fd fd, bool records,
                                                 std::error_code& ec) noexcept {
    try {
        auto t = std::make_shared<socket_transport>(fd.get(), records);
        fd.release();
        ec.clear();
        return t;
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
}

bool worth_retrying(const std::error_code& ec) noexcept {
    if (ec.category() != std::system_category())
        return false;
    int e = ec.value();
    return e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == EADDRINUSE;
}

unique_fd watch_socket_directory(const std::string& path) {
    unique_fd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!fd)
        return fd;
    auto slash = path.rfind('/');
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    if (::inotify_add_watch(fd.get(), dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0)
        fd.reset();
    return fd;
}

void drain_events(int fd) noexcept {
    char buffer[4096];
    while (::read(fd, buffer, sizeof buffer) > 0) {
    }
}

}  // namespace npipe::detail
