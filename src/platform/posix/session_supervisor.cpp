// session_supervisor on POSIX (its portable part: core/session_supervisor.cpp): a watcher thread
// polls one pidfd per session (plus an eventfd for news), so a session is reaped the moment it
// ends, whatever the accepting thread is blocked in.
#include "npipe/session_supervisor.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "core/session_supervisor_impl.hpp"
#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe {

namespace {

// 0 when `path` is a file we may execute, else the errno exec would most likely fail with.
int executable(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return errno;
    if (S_ISDIR(st.st_mode))
        return EACCES;
    return ::access(path.c_str(), X_OK) == 0 ? 0 : errno;
}

}  // namespace

namespace detail {

// The check execvp's search would pass: a name with a '/' is the path; otherwise the first
// $PATH entry holding an executable file. ENOENT when none holds the name at all.
int find_program(const std::string& name) {
    if (name.empty())
        return ENOENT;
    if (name.find('/') != std::string::npos)
        return executable(name);
    const char* env = std::getenv("PATH");
    std::string path = env ? env : "/bin:/usr/bin";
    int best = ENOENT;
    for (std::size_t begin = 0;;) {
        std::size_t end = path.find(':', begin);
        std::string dir = path.substr(begin, end == std::string::npos ? end : end - begin);
        int error = executable((dir.empty() ? "." : dir) + "/" + name);
        if (error == 0)
            return 0;
        if (error != ENOENT && error != ENOTDIR)
            best = error;
        if (end == std::string::npos)
            return best;
        begin = end + 1;
    }
}

}  // namespace detail

namespace {

class posix_supervisor final : public session_supervisor::impl {
  public:
    using impl::impl;

    struct session {
        child_process child;
        detail::unique_fd pidfd;  ///< ours, for poll(); empty on kernels without pidfds
        bool ended = false;       ///< reaped and being reported: erased once it has been
    };

    detail::unique_fd wake;       ///< eventfd: a new session, stop, or the end of the supervisor
    std::list<session> sessions;  ///< erased by the watcher thread only

    process_id start_session(pipe_stream::native_handle_type connection,
                             std::error_code& ec) override {
        process_options io = options.process;
        io.stdin_fd = io.stdout_fd = connection;
        session s;
        try {
            s.child = spawn(argv, std::move(io));
        } catch (const std::system_error& e) {
            ec = e.code();
            return 0;
        } catch (const std::bad_alloc&) {
            ec = std::make_error_code(std::errc::not_enough_memory);
            return 0;
        }
        process_id pid = s.child.pid();
        // Our own pidfd: the child is not reaped until the watcher says so, so the pid is still
        // ours.
        s.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
        {
            std::lock_guard lock(mutex);
            sessions.push_back(std::move(s));
            // stop() came while we spawned: this one ends with the others (SIGKILL once the
            // grace period is over or kill_all() was called).
            if (stopping)
                signal_one(sessions.back(), kill_at ? SIGTERM : SIGKILL);
        }
        notify_watcher();
        return pid;
    }

    std::size_t count() const noexcept override { return sessions.size(); }
    void ask_all_to_end() noexcept override { signal_all(SIGTERM); }
    void kill_all_now() noexcept override {
        signal_all(SIGKILL);
        kill_at.reset();
    }
    void forget_ended() noexcept override {
        sessions.remove_if([](const session& s) { return s.ended; });
    }
    void notify_watcher() noexcept override {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
    }

    static void signal_one(session& s, int sig) noexcept {
        try {
            s.child.kill(sig);
        } catch (const std::system_error&) {
            // EPERM from a command that changed its credentials: nothing more we can do.
        }
    }

    void signal_all(int sig) noexcept {
        for (auto& s : sessions)
            signal_one(s, sig);
    }

    void watch() {
        std::vector<pollfd> fds;
        for (;;) {
            int timeout_ms = -1;
            {
                std::unique_lock lock(mutex);
                if (quitting)
                    return;
                fds.assign(1, pollfd{wake.get(), POLLIN, 0});
                bool blind = false;  // a session without a pidfd: look again now and then
                for (auto& s : sessions) {
                    if (s.pidfd)
                        fds.push_back(pollfd{s.pidfd.get(), POLLIN, 0});
                    else
                        blind = true;
                }
                if (blind)
                    timeout_ms = 100;
                if (kill_at) {
                    auto left =
                        std::chrono::ceil<std::chrono::milliseconds>(*kill_at - clock::now());
                    int left_ms = static_cast<int>(std::max<std::int64_t>(left.count(), 0));
                    timeout_ms = timeout_ms < 0 ? left_ms : std::min(timeout_ms, left_ms);
                }
            }
            // The descriptors polled stay open: only this thread erases sessions.
            int ready = ::poll(fds.data(), fds.size(), timeout_ms);
            if (ready > 0 && (fds[0].revents & POLLIN)) {
                std::uint64_t count = 0;
                [[maybe_unused]] auto n = ::read(wake.get(), &count, sizeof count);
            }
            reap();
        }
    }

    // Reaps every session that has ended and reports it (report()). Sends the grace period's
    // SIGKILL when it is due.
    void reap() {
        std::vector<session_end> ended;
        {
            std::lock_guard lock(mutex);
            if (kill_at && clock::now() >= *kill_at) {
                kill_at.reset();
                signal_all(SIGKILL);
            }
            for (auto& s : sessions) {
                if (s.ended)
                    continue;
                if (auto status = s.child.try_wait()) {
                    s.ended = true;
                    ended.push_back(session_end{s.child.pid(), *status});
                }
            }
        }
        report(ended);
    }
};

}  // namespace

std::unique_ptr<session_supervisor::impl> detail::make_supervisor(std::vector<std::string> argv,
                                                                  supervisor_options options) {
    auto p = std::make_unique<posix_supervisor>(std::move(argv), std::move(options));
    p->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!p->wake)
        throw pipe_error(detail::errno_code(errno), "", "supervise sessions: create an eventfd");
    // The watcher must not take the signals the application waits for in its own threads.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
        p->watcher = std::thread([raw = p.get()] { raw->watch(); });
    } catch (...) {
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return p;
}

}  // namespace npipe
