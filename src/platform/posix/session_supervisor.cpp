// session_supervisor: a watcher thread polls one pidfd per session (plus an eventfd for news),
// so a session is reaped the moment it ends, whatever the accepting thread is blocked in.
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

#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe {

namespace {

using clock = std::chrono::steady_clock;

// 0 when `path` is a file we may execute, else the errno exec would most likely fail with.
int executable(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return errno;
    if (S_ISDIR(st.st_mode))
        return EACCES;
    return ::access(path.c_str(), X_OK) == 0 ? 0 : errno;
}

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

}  // namespace

struct session_supervisor::impl {
    struct session {
        child_process child;
        detail::unique_fd pidfd;  ///< ours, for poll(); empty on kernels without pidfds
        bool ended = false;       ///< reaped and being reported: erased once it has been
    };

    std::vector<std::string> argv;
    supervisor_options options;
    detail::unique_fd wake;  ///< eventfd: a new session, stop, or the end of the supervisor

    mutable std::mutex mutex;
    std::condition_variable changed;  ///< a session ended, or stop() was called
    std::list<session> sessions;      ///< erased by the watcher thread only
    bool stopping = false;
    bool quitting = false;  ///< the destructor has waited for every session
    std::optional<clock::time_point> kill_at;
    std::thread watcher;

    void notify_watcher() noexcept {
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

    // Reaps every session that has ended, reports it, and only then forgets it (closing its
    // descriptors), so that whoever waits for the count to drop also sees the report. Sends
    // the grace period's SIGKILL when it is due.
    void reap() {
        std::vector<session_end> ended;
        {
            std::lock_guard lock(mutex);
            if (kill_at && clock::now() >= *kill_at) {
                kill_at.reset();
                signal_all(SIGKILL);
            }
            for (auto& s : sessions) {
                if (auto status = s.child.try_wait()) {
                    s.ended = true;
                    ended.push_back(session_end{s.child.pid(), *status});
                }
            }
        }
        if (ended.empty())
            return;
        if (options.on_end) {
            for (auto& e : ended)
                options.on_end(e);
        }
        std::lock_guard lock(mutex);
        sessions.remove_if([](const session& s) { return s.ended; });
        changed.notify_all();
    }
};

session_supervisor::session_supervisor(std::vector<std::string> argv, supervisor_options options)
    : impl_(std::make_unique<impl>()) {
    if (argv.empty())
        throw pipe_error(errc::invalid_argument, "", "supervise sessions: empty command");
    if (int error = find_program(argv[0]))
        throw pipe_error(std::error_code(error, std::system_category()), "",
                         "start process '" + argv[0] + "'");
    impl_->argv = std::move(argv);
    impl_->options = std::move(options);
    impl_->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl_->wake)
        throw pipe_error(detail::errno_code(errno), "", "supervise sessions: create an eventfd");
    // The watcher must not take the signals the application waits for in its own threads.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
        impl_->watcher = std::thread([p = impl_.get()] { p->watch(); });
    } catch (...) {
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

session_supervisor::~session_supervisor() {
    stop();
    wait_all();
    {
        std::lock_guard lock(impl_->mutex);
        impl_->quitting = true;
    }
    impl_->notify_watcher();
    impl_->watcher.join();
}

process_id session_supervisor::start(pipe_stream::native_handle_type connection,
                                     std::error_code& ec) {
    ec.clear();
    if (stopping()) {
        ec = errc::operation_aborted;
        return 0;
    }
    process_options io = impl_->options.process;
    io.stdin_fd = io.stdout_fd = connection;
    impl::session s;
    try {
        s.child = spawn(impl_->argv, std::move(io));
    } catch (const std::system_error& e) {
        ec = e.code();
        return 0;
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return 0;
    }
    process_id pid = s.child.pid();
    // Our own pidfd: the child is not reaped until the watcher says so, so the pid is still ours.
    s.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    {
        std::lock_guard lock(impl_->mutex);
        impl_->sessions.push_back(std::move(s));
        // stop() came while we spawned: this one ends with the others (SIGKILL once the grace
        // period is over or kill_all() was called).
        if (impl_->stopping)
            impl_->signal_one(impl_->sessions.back(), impl_->kill_at ? SIGTERM : SIGKILL);
    }
    impl_->notify_watcher();
    return pid;
}

process_id session_supervisor::start(pipe_stream::native_handle_type connection) {
    std::error_code ec;
    process_id pid = start(connection, ec);
    if (ec)
        throw pipe_error(ec, "", "start process '" + impl_->argv[0] + "'");
    return pid;
}

std::size_t session_supervisor::active() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->sessions.size();
}

bool session_supervisor::wait_for_room(std::size_t limit) {
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait(lock, [&] { return impl_->stopping || impl_->sessions.size() < limit; });
    return !impl_->stopping;
}

void session_supervisor::wait_all() {
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait(lock, [&] { return impl_->sessions.empty(); });
}

void session_supervisor::stop() {
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping)
            return;
        impl_->stopping = true;
        impl_->signal_all(SIGTERM);
        impl_->kill_at = clock::now() + impl_->options.kill_grace;
        impl_->changed.notify_all();
    }
    impl_->notify_watcher();
}

void session_supervisor::kill_all() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        impl_->signal_all(SIGKILL);
        impl_->kill_at.reset();
        impl_->changed.notify_all();
    }
    impl_->notify_watcher();
}

bool session_supervisor::stopping() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->stopping;
}

const std::string& session_supervisor::program() const {
    return impl_->argv.front();
}

}  // namespace npipe
