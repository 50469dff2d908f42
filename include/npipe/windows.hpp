// npipe/windows.hpp: what is Windows-only in npipe, in one place (the counterpart of
// npipe/posix.hpp). The portable headers carry no Windows type: a HANDLE is a
// native_handle_type (void*), and a user is a user_id standing for a SID.
//
// On Windows:
//   pipe names                     NAME is \\.\pipe\NAME, as in .NET; no file, nothing stale
//   native_handle()                the pipe's HANDLE (overlapped); nullptr when there is none
//   peer_credentials::pid          GetNamedPipeClientProcessId / GetNamedPipeServerProcessId
//   peer_credentials::uid          a number standing for the peer's SID in this process
//                                  (sid_string() gives the SID); gid is unused (-1)
//   current_user_only              a DACL granting only this user (and owner = this user);
//                                  the client checks the pipe's owner, as .NET does
//   message pipes                  native PIPE_TYPE_MESSAGE pipes, wire-compatible with .NET and
//                                  Win32 peers on Windows (npipe's frames are Linux-only)
//   pipe_options::socket_mode, socket_group   refused (errc::not_supported): POSIX-only
//   pipe_stream::shutdown_write()  byte pipes: an empty write, which the peer reads as the end
//                                  of the stream (a Windows pipe has no half-close; Wine drops
//                                  empty writes); message pipes: errc::not_supported
//   pipe_options::spin_before_block ignored
//   anonymous pipes                CreatePipe; the handle string is the HANDLE's value in decimal
//                                  (.NET's GetClientHandleAsString())
//   spawn()                        CreateProcessW with PROC_THREAD_ATTRIBUTE_HANDLE_LIST: the child
//                                  inherits exactly its std handles and inherit_fds; argv[0] is
//                                  searched as CreateProcessW searches
//   child_process::kill(sig)       TerminateProcess with exit code 128 + sig; exit_status::signal
//                                  is always 0
//   session_supervisor             the command's stdin and stdout are anonymous pipes relayed to
//                                  the connection; stop() ends their input, TerminateProcess
//                                  (exit code 137) after kill_grace
#pragma once

#include <string>

#include "npipe/types.hpp"

namespace npipe::windows {

static_assert(sizeof(native_handle_type) == sizeof(void*), "a native handle is a HANDLE");

/// The SID a peer_credentials::uid stands for, as text ("S-1-5-21-..."); "" when it stands for
/// none (a peer whose identity could not be read).
std::string sid_string(user_id uid);

}  // namespace npipe::windows
