// npipe/posix.hpp: what is POSIX-only in npipe, in one place. The portable headers name these
// things with fixed-width types (npipe/types.hpp); this header ties them to the system's own.
//
// POSIX-only knobs, ignored on other platforms:
//   pipe_options::socket_mode, pipe_options::socket_group  the socket file's mode and group
//   peer_credentials::uid / gid / pid                       SO_PEERCRED's view of a peer
//   pipe_info::owner / group / mode                         list_pipes()'s view of a socket file
//   process_options::inherit_fds, stdin_fd, stdout_fd, stderr_fd and child_process::kill(sig)
//   native_handle(), anonymous pipe handles                 file descriptors
#pragma once

#include <sys/types.h>

#include <type_traits>

#include "npipe/types.hpp"

namespace npipe::posix {

static_assert(std::is_same_v<uid_t, user_id>, "npipe::user_id must hold a uid_t");
static_assert(std::is_same_v<gid_t, group_id>, "npipe::group_id must hold a gid_t");
static_assert(std::is_same_v<pid_t, process_id>, "npipe::process_id must hold a pid_t");
static_assert(sizeof(mode_t) <= sizeof(file_mode), "npipe::file_mode must hold a mode_t");
static_assert(std::is_same_v<native_handle_type, int>, "a native handle is a descriptor");

}  // namespace npipe::posix
