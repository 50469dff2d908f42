// `npipe serve NAME -- CMD`'s loop, the same on Linux (serve.cpp) and Windows
// (serve_windows.cpp): CMD for every client through npipe::session_supervisor. Each platform
// adds its stop handling (signals, console events) and what it does to a new connection.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "npipe/named_pipe_server.hpp"
#include "npipe/session_supervisor.hpp"

namespace npipe::cli {

/// The supervisor of `serve -- CMD`, made before the pipe exists so that a server that cannot
/// run CMD takes no client: exit_request 127 when CMD is not found, 126 when it cannot run.
/// `last` gets each ended session's status (written on the supervisor's thread; read it after
/// wait_all()).
std::unique_ptr<session_supervisor> make_session_supervisor(const std::vector<std::string>& command,
                                                            std::chrono::milliseconds kill_grace,
                                                            std::optional<exit_status>& last);

/// What a platform does around each client of serve_sessions().
struct session_hooks {
    /// Before CMD starts on a new connection (Linux: the timeouts become the socket's own).
    std::function<void(named_pipe_server&)> before_start;
    /// Tells a client whose command could not start, on the connection itself, never blocking.
    std::function<void(named_pipe_server&)> start_failed;
};

/// Runs CMD for every client of `server`, at most `instances` at once (later clients wait in the
/// backlog), until the server is closed or stop() is called (a stop signal or console event),
/// or, with `once`, the first client's CMD has ended; then waits for every session. A command
/// that fails to start fails its client alone, logged with the reason. The exit status: 0, or
/// with `once` CMD's (127 / 126 when it could not start).
int serve_sessions(const std::string& name, named_pipe_server& server, session_supervisor& sessions,
                   int instances, bool once, const std::optional<exit_status>& last,
                   const session_hooks& hooks);

}  // namespace npipe::cli
