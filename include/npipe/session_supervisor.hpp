// npipe/session_supervisor.hpp: one process per connection, as inetd runs a service: each
// connection becomes a command's stdin and stdout, and the supervisor watches, reaps and, when
// asked to stop, ends them (SIGTERM, then SIGKILL after a grace period; on Windows the end of
// their input, then TerminateProcess).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "npipe/pipe_stream.hpp"
#include "npipe/process.hpp"

namespace npipe {

/// How a supervised session ended.
struct session_end {
    process_id pid = 0;  ///< the command's process id (already reaped: it may be reused)
    exit_status status;  ///< how the command ended
};

/// What session_supervisor does besides starting the command.
struct supervisor_options {
    /// How long stop() gives the sessions after SIGTERM before it sends SIGKILL.
    std::chrono::milliseconds kill_grace{std::chrono::seconds(5)};

    /// Called as each session's process ends and is reaped, on the supervisor's own thread
    /// (keep it short; it must not call back into the supervisor, except active()).
    std::function<void(const session_end&)> on_end;

    /// Environment, working directory and stderr of every command; stdin and stdout are the
    /// connection (set by start()).
    process_options process;
};

/// Runs a command for every connection handed to start(), with the connection as the command's
/// stdin and stdout, and supervises the processes: each one is reaped as soon as it ends (no
/// zombie, no descriptor kept for it), the number running is known at once (active(),
/// wait_for_room()), and stop() ends them all: SIGTERM, then SIGKILL to those still running
/// after kill_grace.
///
/// On Windows the command's stdin and stdout are anonymous pipes (synchronous handles, what any
/// console program or C runtime reads and writes) that two threads per session relay to and
/// from the connection: a connection's own handle is overlapped, which a program's plain
/// ReadFile/WriteFile cannot use safely. The connection ends when the command's stdout does
/// (the command exited, or closed it), after its last byte; a session lasts until its process
/// has ended and its output has been relayed. Windows has no SIGTERM: stop() ends every
/// command's input (it reads the end of its stdin, as when its client has finished), and
/// terminates those still running after kill_grace (TerminateProcess with exit code 137, what a
/// shell reports for SIGKILL); kill_all() terminates them at once. A console event (Ctrl+C)
/// reaches the commands by itself: they share the server's console. exit_status::code is the
/// process's exit code, and exit_status::signal always 0.
///
/// A command that fails to start (removed since, fork failing under a process limit, ...) fails
/// that start() alone: the sessions already running and the supervisor go on.
///
/// All functions are safe to call from several threads at once (stop() typically comes from a
/// signal-handling thread while another thread accepts connections). A background thread
/// watches the processes; the destructor stops the sessions (as stop(), with the grace period)
/// and waits for them.
class session_supervisor {
  public:
    /// Supervises `argv` (argv[0] looked up in $PATH unless it contains a '/'; on Windows as
    /// CreateProcess looks for it, ".exe" added to a name without an extension). Checks now that
    /// the program exists and is executable, so that a server can refuse to start rather than
    /// fail every client: throws pipe_error with std::errc::no_such_file_or_directory or
    /// permission_denied naming the program; errc::invalid_argument for an empty argv.
    explicit session_supervisor(std::vector<std::string> argv, supervisor_options options = {});
    ~session_supervisor();
    session_supervisor(const session_supervisor&) = delete;
    session_supervisor& operator=(const session_supervisor&) = delete;

    /// Starts the command with `connection` (a connected pipe's descriptor, e.g.
    /// named_pipe_server::native_handle()) as its stdin and stdout; the child (on Windows, the
    /// session's relay) holds its own copy, so the caller may close or disconnect its end at
    /// once. Returns the process id. On failure
    /// sets `ec` (the errno of the failing step: ENOENT when the program is gone, EAGAIN when
    /// fork fails, ...) and returns 0, and nothing else changes. After stop(): fails with
    /// errc::operation_aborted.
    process_id start(pipe_stream::native_handle_type connection, std::error_code& ec);

    /// As above, throwing pipe_error on failure.
    process_id start(pipe_stream::native_handle_type connection);

    /// The number of sessions whose processes have not ended yet.
    std::size_t active() const;

    /// Blocks until fewer than `limit` sessions run; false (at once) when stop() has been called.
    bool wait_for_room(std::size_t limit);

    /// Blocks until no session runs (after stop(): until the grace period's SIGKILL has done its
    /// work, at the latest).
    void wait_all();

    /// Asks every session to end: SIGTERM now, SIGKILL to those still running kill_grace later
    /// (Windows: the end of their input now, TerminateProcess kill_grace later). Later start()
    /// calls fail. Returns at once; idempotent.
    void stop();

    /// SIGKILL (Windows: TerminateProcess) to every session now (for example on a second
    /// interrupt), and as stop().
    void kill_all();

    /// Whether stop() or kill_all() has been called.
    bool stopping() const;

    /// The program name the supervisor runs (argv[0]).
    const std::string& program() const;

    struct impl;  ///< opaque

  private:
    std::unique_ptr<impl> impl_;
};

}  // namespace npipe
