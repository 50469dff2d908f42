// The local transport: AF_UNIX SOCK_STREAM sockets at .NET's paths, nothing added to the stream,
// for byte-mode pipes; SOCK_SEQPACKET at the same paths for message-mode pipes.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "npipe/options.hpp"
#include "platform/posix/unique_fd.hpp"
#include "transport/unix_socket/socket_transport.hpp"

namespace npipe::detail {

/// The temp directory .NET uses for simple names, ending in '/'.
std::string temp_directory();

/// Binds and listens at path without ever taking a live server's name: bind() creates the file
/// only if nothing is there; an existing socket with no live listener (a crashed server's) is
/// removed and the bind retried; anything else fails (name_in_use, not_a_socket, ...).
/// The socket file gets `mode` from the start (set on the socket before bind), never looser;
/// without one the umask decides, as with .NET.
/// On success `bound` holds the file's identity, so only our own file is unlinked later.
/// `type` is SOCK_STREAM (byte-mode pipes) or SOCK_SEQPACKET (message-mode pipes).
unique_fd listen_at(const std::string& path, std::optional<mode_t> mode, struct stat& bound,
                    std::error_code& ec, int type = SOCK_STREAM);

/// What listen_at creates: the socket type and the file's permissions.
struct listen_spec {
    int type = SOCK_STREAM;      ///< SOCK_SEQPACKET for message-mode pipes
    std::optional<mode_t> mode;  ///< permission bits; none: the umask decides
    std::optional<gid_t> group;  ///< the file's group; none: the creator's (or the dir's)
    /// Take the liveness lock beside the file. Off for a second socket of a server that holds
    /// its name's lock already (the shared-memory rendezvous).
    bool liveness_lock = true;
    /// Called once, with the lock held, before the file is made: what must exist before a
    /// client can find the socket (the shared-memory rendezvous).
    std::function<void()> before_bind;
};

/// listen_at with a group, and `why` set to a sentence for the user when it fails for a reason
/// the error code alone does not tell (which directory is unsafe, who owns the socket there).
///
/// Refuses paths another user could tamper with: every directory on the way (as written and
/// as resolved) must belong to us or root and must not be writable by group or others unless
/// it is sticky, and every symbolic link on the way (and on the way of its target) must belong
/// to us or root (errc::access_denied).
/// Holds an OFD lock on `path`.npipe-lock from before the bind until unlink_if_same(path,
/// bound), so that is_live_socket sees the server from any network namespace; another server
/// holding it is errc::name_in_use, a lock file of another user's is refused. At the path itself: a
/// symbolic link or any other non-socket is refused (errc::not_a_socket), a socket owned by another
/// user is never removed (errc::access_denied when stale, errc::name_in_use when live). Nothing but
/// `path` is ever unlinked, and only when it is a stale socket of ours.
unique_fd listen_at(const std::string& path, const listen_spec& spec, struct stat& bound,
                    std::error_code& ec, std::string& why);

/// Why the directories leading to `path` let another user replace a file there ("" when safe).
std::string unsafe_directory_reason(const std::string& path);

/// Where a server that offers shared memory listens for the clients that want it, beside its
/// socket `path` (docs/protocol.md, "Shared memory").
std::string shared_memory_rendezvous(const std::string& path);

/// Whether `path` is the rendezvous beside a pipe's socket file (not a pipe of its own).
bool is_shared_memory_rendezvous(const std::string& path);

/// Removes the socket file at path if it is still the one described by `bound` (never when
/// `remove_file` is false: the caller knows it was replaced), then releases the liveness lock
/// listen_at took for it (whether or not the file was still ours).
void unlink_if_same(const std::string& path, const struct stat& bound,
                    bool remove_file = true) noexcept;

/// One non-blocking connect attempt; returns a blocking, connected socket, or sets ec to the
/// raw errno (std::system_category) so the caller can tell "retry" errors from final ones.
/// A socket of the wrong `type` for the listener fails with EPROTOTYPE, before any byte moves:
/// that is how a client tells a message-mode pipe (SOCK_SEQPACKET) from a byte-mode one.
unique_fd connect_once(const std::string& path, std::error_code& ec, int type = SOCK_STREAM);

/// Whether a server is alive at the socket file with this identity: an npipe server holds the
/// lock beside it (seen from any network namespace), or a socket in our network namespace is
/// bound to it (sock_diag by inode, falling back to /proc/net/unix by path: how .NET servers
/// and servers without the lock are seen).
bool is_live_socket(const std::string& path, const struct stat& file);

/// The sockets bound in our network namespace, read from the kernel once (one sock_diag dump,
/// or /proc/net/unix), so that checking many files (list_pipes) costs one dump, not one each.
class bound_sockets {
  public:
    bound_sockets();
    /// Whether a socket is bound to this file (by inode; by path where only /proc answered).
    bool contains(const std::string& path, const struct stat& file) const;

  private:
    std::set<std::pair<std::uint32_t, std::uint32_t>> files_;  ///< (device, inode)
    std::set<std::string> paths_;                              ///< the /proc/net/unix fallback
    bool by_inode_ = false;
};

/// is_live_socket with the kernel's view taken beforehand.
bool is_live_socket(const std::string& path, const struct stat& file, const bound_sockets& bound);

/// Every bound Unix socket path the kernel knows (listening ones), for list_pipes().
std::vector<std::string> listening_socket_paths();

/// Errors of connect_once that mean "no server (yet)" or "server busy": .NET's clients wait
/// and retry exactly these, and so do npipe's (synchronous and asynchronous).
bool worth_retrying(const std::error_code& ec) noexcept;

/// An inotify descriptor watching the directory of the socket at `path` for new entries, so
/// that a waiting client wakes when the server's file appears; empty when it cannot be watched
/// (the directory may not exist yet: the client's backoff alone paces it then).
unique_fd watch_socket_directory(const std::string& path);

/// Reads and discards the pending events of a non-blocking descriptor (an inotify watch).
void drain_events(int fd) noexcept;

/// Sets SO_RCVBUF / SO_SNDBUF when non-zero.
void set_buffer_sizes(int fd, std::size_t in_size, std::size_t out_size) noexcept;

/// A transport owning the connected socket `fd` (SOCK_SEQPACKET when `records`); null with
/// not_enough_memory (the socket is closed then).
std::shared_ptr<transport> make_socket_transport(unique_fd fd, bool records,
                                                 std::error_code& ec) noexcept;

}  // namespace npipe::detail
