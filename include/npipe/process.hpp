// npipe/process.hpp: starting a child process that inherits exactly the descriptors it is given.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "npipe/types.hpp"

namespace npipe {

/// How a child process ended.
struct exit_status {
    int code = 0;    ///< the exit code (0..255) when the process exited; 0 when killed
    int signal = 0;  ///< the signal that killed the process; 0 when it exited

    bool exited() const noexcept { return signal == 0; }
    bool success() const noexcept { return signal == 0 && code == 0; }
    /// The status as a shell reports it in $?: the exit code, or 128 + the signal number.
    int shell_code() const noexcept { return signal != 0 ? 128 + signal : code; }

    friend bool operator==(const exit_status&, const exit_status&) = default;
};

/// What a child process gets besides its arguments.
struct process_options {
    /// Descriptors (each above 2) the child inherits under their own numbers, whether or not
    /// they are close-on-exec here: the handles of anonymous pipes, typically. Every other
    /// descriptor above 2 is closed in the child.
    std::vector<native_handle_type> inherit_fds;

    /// Descriptors that become the child's stdin, stdout and stderr. Unset: the child shares
    /// ours. The same descriptor may be given for several, and any descriptor may be given,
    /// including 0..2 (stderr_fd = 1 is `2>&1` of our stdout, even with stdout_fd set).
    std::optional<native_handle_type> stdin_fd;
    std::optional<native_handle_type> stdout_fd;
    std::optional<native_handle_type> stderr_fd;

    /// The child's whole environment as "NAME=value" entries. Unset: a copy of ours.
    std::optional<std::vector<std::string>> env;

    /// The child's working directory. Unset: ours.
    std::optional<std::string> working_directory;
};

/// A started child process. Its destructor never leaves a zombie: a child still running is
/// killed (SIGKILL) and reaped, so call wait() to let it finish. Movable, not copyable; wait(),
/// try_wait(), wait_for() and kill() may be called from different threads at once, and kill()
/// never signals a process id that has been reaped (and so possibly reused).
class child_process {
  public:
    /// An empty object, with no process.
    child_process() noexcept;
    child_process(child_process&&) noexcept;
    child_process& operator=(child_process&&) noexcept;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process();

    /// The process id (0 for an empty object). Stays valid after the child has been reaped.
    process_id pid() const noexcept;

    /// Blocks until the child ends and returns how. Returns the same status on every call.
    /// Throws pipe_error when the child was reaped behind our back (SIGCHLD set to SIG_IGN).
    exit_status wait();

    /// The status if the child has ended (reaping it), std::nullopt while it runs.
    std::optional<exit_status> try_wait();

    /// As wait(), giving up after `timeout` with std::nullopt (the child keeps running).
    std::optional<exit_status> wait_for(std::chrono::milliseconds timeout);

    /// Asks the child to end (SIGTERM); does nothing once it has been reaped.
    void kill();
    /// Sends the POSIX signal `sig` to the child; does nothing once it has been reaped.
    void kill(int sig);

    struct impl;  ///< opaque

  private:
    explicit child_process(std::unique_ptr<impl> p) noexcept;
    std::unique_ptr<impl> impl_;
    friend child_process spawn(std::vector<std::string> argv, process_options options);
};

/// Starts argv[0] with arguments argv (argv[0] is looked up in $PATH, as by execvp, unless it
/// contains a '/'). The child inherits descriptors 0..2 (or the ones options give for them) and
/// options.inherit_fds, nothing else. It starts with an empty signal mask and SIGPIPE at its
/// default disposition (ignoring SIGPIPE is this process's business, not the child's); other
/// ignored signals stay ignored, as across any exec.
///
/// Failures to start, including an exec failure in the child (no such program, permission
/// denied, ...), throw pipe_error with the errno of the failing step and an operation naming
/// the program and the step; the failed child has been reaped by then. An empty argv, or an
/// inherit_fds entry that is not above 2, fails with errc::invalid_argument; a descriptor that is
/// not open fails with EBADF.
child_process spawn(std::vector<std::string> argv, process_options options = {});

}  // namespace npipe
