// npipe/pipe_name.hpp: how a pipe name becomes a socket path, and which pipes exist.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "npipe/types.hpp"

namespace npipe {

/// The socket path for a pipe name, exactly as .NET and Mono compute it on Linux:
/// a name starting with '/' is the path itself; any other name becomes
/// "<temp>/CoreFxPipe_<name>", <temp> being $TMPDIR when set and non-empty, else /tmp.
/// Fails with errc::invalid_name (empty name, '/' or NUL in a simple name, a rooted name ending
/// in '/', the reserved name "anonymous") or errc::path_too_long (the path and its NUL must fit
/// in sockaddr_un's 108 bytes: npipe refuses rather than truncates).
std::string pipe_path(std::string_view name);
std::string pipe_path(std::string_view name, std::error_code& ec);

/// A pipe found by list_pipes().
struct pipe_info {
    std::string name;    ///< the pipe name a client would use ("x" for CoreFxPipe_x, or the path)
    std::string path;    ///< the socket file
    bool live = false;   ///< a server is listening on it (false: a stale file from a crash)
    user_id owner = 0;   ///< the socket file's owner
    group_id group = 0;  ///< the socket file's group
    file_mode mode = 0;  ///< the socket file's permission bits
};

/// The pipes in the temp directory (CoreFxPipe_* sockets, live or stale), then every other
/// listening Unix socket with a path that the kernel reports (rooted pipe names), sorted by path.
/// Liveness is read from the kernel (sock_diag), never by connecting.
std::vector<pipe_info> list_pipes();

}  // namespace npipe
