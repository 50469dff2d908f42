// Child processes with an exact set of inherited descriptors: fork, then in the child only
// async-signal-safe system calls up to execve; exec failures come back through a pipe.
#include "npipe/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "core/pipe_state.hpp"
#include "npipe/errors.hpp"
#include "npipe/posix.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/unique_fd.hpp"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char** environ;

namespace npipe {

struct child_process::impl {
    pid_t pid = 0;
    detail::unique_fd pidfd;  ///< lets wait_for() sleep in poll(); empty on kernels without it
    std::mutex mutex;         ///< guards status and lost, and orders kill() against reaping
    std::optional<exit_status> status;
    bool lost = false;  ///< someone else reaped the child: its pid may already be reused
};

namespace {

using detail::unique_fd;

[[noreturn]] void fail(std::error_code ec, const std::string& operation) {
    throw pipe_error(ec, "", operation);
}

std::error_code system_error_code(int error) {
    return {error, std::system_category()};
}

// What the child reports through the error pipe when a step before (or the) exec fails.
enum class stage : int { redirect_stdin, redirect_stdout, redirect_stderr, inherit, chdir, exec };

struct failure_report {
    stage step;
    int error;
};

std::string describe(stage step, const std::string& working_directory) {
    switch (step) {
        case stage::redirect_stdin:
            return "redirect stdin";
        case stage::redirect_stdout:
            return "redirect stdout";
        case stage::redirect_stderr:
            return "redirect stderr";
        case stage::inherit:
            return "pass an inherited descriptor";
        case stage::chdir:
            return "change directory to '" + working_directory + "'";
        case stage::exec:
            return "execute";
    }
    return "start";
}

// Everything the child needs, prepared by the parent: after fork the child may not allocate.
struct child_plan {
    char* const* argv;
    char* const* envp;
    std::vector<const char*> candidates;  ///< paths to try execve on, in order
    int stdio[3];                         ///< -1: keep ours
    const std::vector<int>* inherit;
    const char* working_directory;
    int error_pipe;
    int max_fd;
};

[[noreturn]] void report(const child_plan& plan, stage step, int error) {
    failure_report r{step, error};
    [[maybe_unused]] auto n = ::write(plan.error_pipe, &r, sizeof r);
    ::_exit(127);
}

[[noreturn]] void run_child(const child_plan& plan) {
    // A handler inherited from the parent must not run in the child before exec, and SIGPIPE
    // ignored by npipe is not the child's choice. Every signal is still blocked here.
    for (int sig = 1; sig < NSIG; ++sig) {
        struct sigaction current {};
        if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &current) != 0)
            continue;
        if (current.sa_handler == SIG_DFL || (current.sa_handler == SIG_IGN && sig != SIGPIPE))
            continue;
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(sig, &dfl, nullptr);
    }

    // Copy the stdio sources above 2 first, so a source that is itself 0..2 (stderr from our
    // stdout while stdout goes elsewhere) is read before any of 0..2 is overwritten.
    int staged[3] = {-1, -1, -1};
    for (int i = 0; i < 3; ++i) {
        if (plan.stdio[i] < 0)
            continue;
        staged[i] = ::fcntl(plan.stdio[i], F_DUPFD_CLOEXEC, 3);
        if (staged[i] < 0)
            report(plan, static_cast<stage>(i), errno);
    }
    for (int i = 0; i < 3; ++i) {
        if (staged[i] >= 0 && ::dup2(staged[i], i) < 0)
            report(plan, static_cast<stage>(i), errno);
    }

    // Everything above 2 closes at exec (the error pipe only then, so it can still report),
    // except the descriptors we were asked to pass on.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < plan.max_fd; ++fd)
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    for (int fd : *plan.inherit) {
        if (::fcntl(fd, F_SETFD, 0) != 0)
            report(plan, stage::inherit, errno);
    }

    if (plan.working_directory && ::chdir(plan.working_directory) != 0)
        report(plan, stage::chdir, errno);

    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    // execvp's rules: go on past a directory that lacks the program, and report EACCES if a
    // candidate existed but could not be run.
    int error = ENOENT;
    bool denied = false;
    for (const char* path : plan.candidates) {
        ::execve(path, plan.argv, plan.envp);
        error = errno;
        if (error == EACCES)
            denied = true;
        else if (error != ENOENT && error != ENOTDIR)
            break;
    }
    if (denied && (error == ENOENT || error == ENOTDIR))
        error = EACCES;
    report(plan, stage::exec, error);
}

std::vector<std::string> exec_candidates(const std::string& program) {
    if (program.find('/') != std::string::npos)
        return {program};
    const char* path = std::getenv("PATH");
    std::string_view dirs = path && *path ? path : "/bin:/usr/bin";
    std::vector<std::string> candidates;
    for (;;) {
        auto colon = dirs.find(':');
        auto dir = dirs.substr(0, colon);
        candidates.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + program);
        if (colon == std::string_view::npos)
            break;
        dirs.remove_prefix(colon + 1);
    }
    return candidates;
}

int open_max() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return 1 << 20;
    return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, INT_MAX));
}

void check_open(int fd, const std::string& operation, const std::string& what) {
    if (fd < 0 || ::fcntl(fd, F_GETFD) < 0)
        fail(system_error_code(EBADF),
             operation + ": " + what + " " + std::to_string(fd) + " is not an open descriptor");
}

exit_status decode(int status) {
    if (WIFSIGNALED(status))
        return {0, WTERMSIG(status)};
    return {WEXITSTATUS(status), 0};
}

void reap_blocking(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

// Reaps the child if it has ended (blocking until it does when `block`); call under the mutex.
std::optional<exit_status> reap_locked(child_process::impl& p, bool block) {
    if (p.status)
        return p.status;
    if (p.lost)
        fail(system_error_code(ECHILD),
             "wait for process " + std::to_string(p.pid) + ": it was reaped elsewhere");
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(p.pid, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == p.pid) {
        p.status = decode(status);
        return p.status;
    }
    if (r == 0)
        return std::nullopt;
    int error = errno;
    p.lost = true;
    fail(system_error_code(error), "wait for process " + std::to_string(p.pid) +
                                       (error == ECHILD ? ": it was reaped elsewhere" : ""));
}

}  // namespace

child_process::child_process() noexcept = default;
child_process::child_process(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
child_process::child_process(child_process&&) noexcept = default;

child_process& child_process::operator=(child_process&& other) noexcept {
    if (this != &other) {
        child_process old(std::move(*this));  // kills and reaps a child still running
        impl_ = std::move(other.impl_);
    }
    return *this;
}

child_process::~child_process() {
    if (!impl_ || impl_->pid <= 0)
        return;
    std::lock_guard lock(impl_->mutex);
    if (impl_->status || impl_->lost)
        return;
    ::kill(impl_->pid, SIGKILL);
    reap_blocking(impl_->pid);
}

process_id child_process::pid() const noexcept {
    return impl_ ? impl_->pid : 0;
}

exit_status child_process::wait() {
    if (!impl_)
        fail(errc::invalid_argument, "wait for process: no process");
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->status)
            return *impl_->status;
    }
    // Wait without reaping, so that kill() (which takes the mutex) can never signal a pid that
    // has been reaped and reused while we slept.
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(impl_->pid), &info, WEXITED | WNOWAIT) != 0) {
        if (errno == EINTR)
            continue;
        break;  // ECHILD: reap_locked reports it
    }
    std::lock_guard lock(impl_->mutex);
    return *reap_locked(*impl_, true);
}

std::optional<exit_status> child_process::try_wait() {
    if (!impl_)
        fail(errc::invalid_argument, "wait for process: no process");
    std::lock_guard lock(impl_->mutex);
    return reap_locked(*impl_, false);
}

std::optional<exit_status> child_process::wait_for(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto nap = std::chrono::milliseconds(1);
    for (;;) {
        if (auto status = try_wait())
            return status;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return std::nullopt;
        int pidfd = impl_->pidfd.get();  // set once by spawn, before anyone else sees it
        if (pidfd >= 0) {
            // Readable once the child has exited (and still so after it is reaped; the pidfd
            // lives as long as this object).
            pollfd fd{pidfd, POLLIN, 0};
            int wait_ms = static_cast<int>(std::min<std::int64_t>(left.count(), INT_MAX));
            ::poll(&fd, 1, wait_ms);
        } else {
            std::this_thread::sleep_for(std::min(nap, left));
            nap = std::min(nap * 2, std::chrono::milliseconds(20));
        }
    }
}

void child_process::kill() {
    kill(SIGTERM);
}

void child_process::kill(int sig) {
    if (!impl_)
        return;
    std::lock_guard lock(impl_->mutex);
    if (impl_->status || impl_->lost)
        return;
    if (::kill(impl_->pid, sig) != 0)
        fail(detail::errno_code(errno),
             "send signal " + std::to_string(sig) + " to process " + std::to_string(impl_->pid));
}

child_process spawn(std::vector<std::string> argv, process_options options) {
    if (argv.empty())
        fail(errc::invalid_argument, "start process: empty argument list");
    const std::string operation = "start process '" + argv[0] + "'";
    if (argv[0].empty())
        fail(system_error_code(ENOENT), operation + ": empty program name");
    for (int fd : options.inherit_fds) {
        if (fd >= 0 && fd <= 2)
            fail(errc::invalid_argument,
                 operation + ": inherited descriptor " + std::to_string(fd) +
                     " is not above 2 (give 0..2 through stdin_fd, stdout_fd, stderr_fd)");
        check_open(fd, operation, "inherited descriptor");
    }
    const char* names[3] = {"stdin descriptor", "stdout descriptor", "stderr descriptor"};
    const std::optional<int>* stdio[3] = {&options.stdin_fd, &options.stdout_fd,
                                          &options.stderr_fd};
    for (int i = 0; i < 3; ++i) {
        if (*stdio[i])
            check_open(**stdio[i], operation, names[i]);
    }

    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<char*> env;
    if (options.env) {
        for (auto& e : *options.env)
            env.push_back(e.data());
        env.push_back(nullptr);
    }
    auto candidates = exec_candidates(argv[0]);

    child_plan plan{};
    plan.argv = args.data();
    plan.envp = options.env ? env.data() : environ;
    for (auto& c : candidates)
        plan.candidates.push_back(c.c_str());
    for (int i = 0; i < 3; ++i)
        plan.stdio[i] = stdio[i]->value_or(-1);
    plan.inherit = &options.inherit_fds;
    plan.working_directory =
        options.working_directory ? options.working_directory->c_str() : nullptr;
    plan.max_fd = open_max();

    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0)
        fail(detail::errno_code(errno), operation + ": create the error pipe");
    unique_fd error_read(ends[0]), error_write(ends[1]);
    if (error_write.get() <= 2) {
        // The child overwrites 0..2 before it could report through it.
        error_write = unique_fd(::fcntl(error_write.get(), F_DUPFD_CLOEXEC, 3));
        if (!error_write)
            fail(detail::errno_code(errno), operation + ": create the error pipe");
    }
    plan.error_pipe = error_write.get();

    // Blocked across fork, so no handler of ours runs in the child before run_child resets it.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = ::fork();
    if (pid == 0)
        run_child(plan);
    int fork_error = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0)
        fail(detail::errno_code(fork_error), operation + ": fork");

    auto p = std::make_unique<child_process::impl>();
    p->pid = pid;
    child_process child(std::move(p));  // from here a throw kills and reaps the child
    error_write.reset();

    failure_report r{};
    std::size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = ::read(error_read.get(), reinterpret_cast<char*>(&r) + got, sizeof r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    if (got > 0) {
        child.wait();
        if (got < sizeof r)
            fail(errc::protocol_error, operation + ": truncated failure report from the child");
        fail(system_error_code(r.error),
             operation + ": " + describe(r.step, options.working_directory.value_or("")));
    }
    // pidfds are always close-on-exec; without one (old kernels) wait_for() naps instead.
    child.impl_->pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    return child;
}

}  // namespace npipe
