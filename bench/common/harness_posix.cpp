// The run on POSIX: the server is a forked process, pinned and measured (getrusage) on its own.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "harness.hpp"
#include "harness_detail.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::bench {

using clock = std::chrono::steady_clock;
using npipe::detail::unique_fd;

void pin_to_cpu(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    // Every thread that exists already (a runtime may have started some), then the calling one,
    // whose mask the threads created later inherit.
    if (DIR* d = ::opendir("/proc/self/task")) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.')
                ::sched_setaffinity(std::atoi(e->d_name), sizeof set, &set);
        }
        ::closedir(d);
    }
    if (::sched_setaffinity(0, sizeof set, &set) != 0)
        throw bench_error("cannot pin to CPU " + std::to_string(cpu) + ": " + std::strerror(errno));
}

namespace detail {

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A process's pin passes to the threads it creates.
void pin_thread(int) {}

}  // namespace detail

namespace {

/// Blocks until the other end of a pipe is closed (end of stream).
void wait_for_close(int fd) {
    char buf[64];
    for (;;) {
        auto n = ::read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR))
            return;
    }
}

void server_process(transport& t, const config& cfg, unique_fd ready, unique_fd done) {
    // The server must not outlive a client that crashed: it could wait in accept() forever.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    pin_to_cpu(cfg.cpu_server);
    t.in_process(role::server, cfg);
    auto l = t.listen(cfg);
    auto endpoint = l->endpoint();
    for (std::size_t off = 0; off < endpoint.size();) {
        auto n = ::write(ready.get(), endpoint.data() + off, endpoint.size() - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw bench_error("cannot tell the client the endpoint");
        off += static_cast<std::size_t>(n);
    }
    ready.reset();  // end of stream: the endpoint is complete and the server is listening
    detail::for_each_slot(cfg.clients, cfg.cpu_server, "server",
                          [&](int slot) { detail::serve_slot(t, *l, cfg, slot); });
    // Stay up until the client has everything: some systems (ZeroMQ, nng) send from a
    // background thread, and a server that exited right after its last send could lose it.
    wait_for_close(done.get());
}

/// Kills and reaps the server child unless it was reaped normally.
struct child_guard {
    pid_t pid = -1;
    ~child_guard() {
        if (pid <= 0)
            return;
        // A server whose client failed usually ends by itself within moments (its connection
        // reads end of stream) and then removes its socket file; kill only one that does not.
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid, nullptr, WNOHANG) == pid)
                return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    /// The server's status when it has already ended, as text ("" while it runs).
    std::string ended() {
        int status = 0;
        if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            return describe(status);
        }
        return "";
    }
    static std::string describe(int status) {
        if (WIFEXITED(status))
            return "exited with status " + std::to_string(WEXITSTATUS(status));
        if (WIFSIGNALED(status))
            return std::string("killed by signal ") + ::strsignal(WTERMSIG(status));
        return "ended";
    }
    int wait(rusage* usage = nullptr) {
        int status = 0;
        rusage ignored{};
        while (::wait4(pid, &status, 0, usage ? usage : &ignored) < 0 && errno == EINTR) {
        }
        pid = -1;
        return status;
    }
};

double cpu_seconds(const rusage& u) {
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

}  // namespace

result run(transport& t, const config& cfg_in) {
    config cfg = detail::prepared(cfg_in);
    t.check(cfg);
    t.before_fork(cfg);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw bench_error(std::string("pipe2: ") + std::strerror(errno));
    unique_fd ready_read(fds[0]), ready_write(fds[1]);
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw bench_error(std::string("pipe2: ") + std::strerror(errno));
    unique_fd done_read(fds[0]), done_write(fds[1]);  // closed by the client when it is done

    std::fflush(nullptr);
    std::cout.flush();
    child_guard server;
    server.pid = ::fork();
    if (server.pid < 0)
        throw bench_error(std::string("fork: ") + std::strerror(errno));
    if (server.pid == 0) {
        server.pid = -1;  // the guard belongs to the parent
        ready_read.reset();
        done_write.reset();
        try {
            server_process(t, cfg, std::move(ready_write), std::move(done_read));
        } catch (const std::exception& e) {
            detail::die("server", e.what());
        }
        std::fflush(nullptr);
        std::_Exit(0);
    }
    ready_write.reset();
    done_read.reset();

    pin_to_cpu(cfg.cpu_client);
    t.in_process(role::client, cfg);

    std::string endpoint;
    char chunk[256];
    for (;;) {
        auto n = ::read(ready_read.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        endpoint.append(chunk, static_cast<std::size_t>(n));
    }
    if (endpoint.empty())
        throw bench_error("the server failed before listening (it " +
                          child_guard::describe(server.wait()) + ")");

    result r;
    rusage client_before{}, client_after{}, server_usage{};
    ::getrusage(RUSAGE_SELF, &client_before);
    const auto wall_start = clock::now();
    try {
        r = detail::run_client(t, cfg, endpoint);
    } catch (const std::exception& e) {
        auto server_status = server.ended();
        if (server_status.empty())
            throw;
        throw bench_error(std::string(e.what()) + " (the server process had " + server_status +
                          ")");
    }
    const double wall = std::chrono::duration<double>(clock::now() - wall_start).count();
    ::getrusage(RUSAGE_SELF, &client_after);
    done_write.reset();
    int status = server.wait(&server_usage);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw bench_error("the server process " + child_guard::describe(status));
    // The server's figure covers its whole life (listening and accepting too, a small part of
    // any run); the client's, the run from its first connect.
    const double client_cpu = cpu_seconds(client_after) - cpu_seconds(client_before);
    const double server_cpu = cpu_seconds(server_usage);
    const auto ops = static_cast<double>(detail::total_operations(cfg));
    r.cpu_client_us = client_cpu * 1e6 / ops;
    r.cpu_server_us = server_cpu * 1e6 / ops;
    if (wall > 0) {
        r.cpu_client_share = client_cpu / wall;
        r.cpu_server_share = server_cpu / wall;
    }
    return r;
}

}  // namespace npipe::bench
