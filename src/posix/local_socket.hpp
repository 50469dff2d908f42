// The local transport: AF_UNIX SOCK_STREAM sockets at .NET's paths, nothing added to the stream.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "posix/unique_fd.hpp"

namespace npipe::detail {

/// The temp directory .NET uses for simple names, ending in '/'.
std::string temp_directory();

/// Binds and listens at path without ever taking a live server's name: bind() creates the file
/// only if nothing is there; an existing socket with no live listener (a crashed server's) is
/// removed and the bind retried; anything else fails (name_in_use, not_a_socket, ...).
/// The socket file gets `mode` from the start (set on the socket before bind), never looser;
/// without one the umask decides, as with .NET.
/// On success `bound` holds the file's identity, so only our own file is unlinked later.
unique_fd listen_at(const std::string& path, std::optional<mode_t> mode, struct stat& bound,
                    std::error_code& ec);

/// Removes the socket file at path if it is still the one described by `bound`.
void unlink_if_same(const std::string& path, const struct stat& bound) noexcept;

/// One non-blocking connect attempt; returns a blocking, connected socket, or sets ec to the
/// raw errno (std::system_category) so the caller can tell "retry" errors from final ones.
unique_fd connect_once(const std::string& path, std::error_code& ec);

/// Whether any socket in the kernel is bound to the file with this identity.
/// Answers from sock_diag (the file's inode), falling back to /proc/net/unix (its path).
bool is_live_socket(const std::string& path, const struct stat& file);

/// Every bound Unix socket path the kernel knows (listening ones), for list_pipes().
std::vector<std::string> listening_socket_paths();

/// Sets SO_RCVBUF / SO_SNDBUF when non-zero.
void set_buffer_sizes(int fd, std::size_t in_size, std::size_t out_size) noexcept;

}  // namespace npipe::detail
