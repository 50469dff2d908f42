// The run on Windows, which has no fork: the server runs on a thread of this process, started
// before the client and told when the client is done; a client that fails closes the listener
// (listener::close()) so the server's blocked calls end and its thread can be joined. Each
// end's CPU time is the time of the threads that ran its slots (GetThreadTimes).
#include <windows.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "harness.hpp"
#include "harness_detail.hpp"

namespace npipe::bench {

void pin_to_cpu(int cpu) {
    if (cpu < 0)
        return;
    if (cpu >= 64 || !::SetThreadAffinityMask(::GetCurrentThread(), DWORD_PTR{1} << cpu))
        throw bench_error("cannot pin to CPU " + std::to_string(cpu) + ": Windows error " +
                          std::to_string(cpu >= 64 ? ERROR_INVALID_PARAMETER : ::GetLastError()));
}

namespace detail {

double thread_cpu_seconds() {
    FILETIME created, exited, kernel, user;
    if (!::GetThreadTimes(::GetCurrentThread(), &created, &exited, &kernel, &user))
        return 0;
    auto ticks = [](const FILETIME& f) {
        return static_cast<double>((static_cast<std::uint64_t>(f.dwHighDateTime) << 32) |
                                   f.dwLowDateTime);
    };
    return (ticks(kernel) + ticks(user)) * 100e-9;  // 100 ns units
}

// A thread's affinity does not pass to the threads it creates.
void pin_thread(int cpu) {
    pin_to_cpu(cpu);
}

}  // namespace detail

namespace {

using clock = std::chrono::steady_clock;

// The calling thread's affinity back as it was when the run ends (the client pins this thread).
class affinity_restore {
  public:
    affinity_restore() {
        DWORD_PTR process = 0, system = 0;
        if (::GetProcessAffinityMask(::GetCurrentProcess(), &process, &system))
            mask_ = process;
    }
    ~affinity_restore() {
        if (mask_)
            ::SetThreadAffinityMask(::GetCurrentThread(), mask_);
    }
    affinity_restore(const affinity_restore&) = delete;
    affinity_restore& operator=(const affinity_restore&) = delete;

  private:
    DWORD_PTR mask_ = 0;
};

// The server thread and what it shares with the client. Its destructor ends and joins it
// whatever happened: the client is marked done and the listener closed.
class server_thread {
  public:
    server_thread(transport& t, const config& cfg) : thread_([this, &t, &cfg] { run(t, cfg); }) {}
    ~server_thread() { finish(true); }
    server_thread(const server_thread&) = delete;
    server_thread& operator=(const server_thread&) = delete;

    /// The endpoint once the server listens; nullopt when it failed before (failure() says why).
    std::optional<std::string> endpoint() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return endpoint_.has_value() || ended_; });
        return endpoint_;
    }

    /// Tells the server the client is done (closing the listener first when it failed, so the
    /// server's blocked calls end) and joins it.
    void finish(bool client_failed) {
        {
            std::lock_guard lock(mutex_);
            client_done_ = true;
            if (client_failed && listener_)
                listener_->close();
        }
        changed_.notify_all();
        if (thread_.joinable())
            thread_.join();
    }

    /// Why the server failed ("" when it did not). After finish().
    const std::string& failure() const { return failure_; }
    /// The CPU seconds its slots took. After finish().
    double cpu_seconds() const { return cpu_; }

  private:
    void run(transport& t, const config& cfg) {
        try {
            pin_to_cpu(cfg.cpu_server);
            t.in_process(role::server, cfg);
            auto l = t.listen(cfg);
            {
                std::lock_guard lock(mutex_);
                // A client that failed before it could connect would leave accept() waiting.
                if (client_done_)
                    throw bench_error("the client ended before the server listened");
                listener_ = l.get();
                endpoint_ = l->endpoint();
            }
            changed_.notify_all();
            // Unpublished before the listener is destroyed, also when a slot fails.
            struct unpublish {
                server_thread& s;
                ~unpublish() {
                    std::lock_guard lock(s.mutex_);
                    s.listener_ = nullptr;
                }
            } guard{*this};
            cpu_ = detail::for_each_slot(cfg.clients, cfg.cpu_server, "server",
                                         [&](int slot) { detail::serve_slot(t, *l, cfg, slot); });
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [this] { return client_done_; });
        } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            failure_ = e.what();
        }
        std::lock_guard lock(mutex_);
        ended_ = true;
        changed_.notify_all();
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::optional<std::string> endpoint_;
    listener* listener_ = nullptr;
    bool client_done_ = false;
    bool ended_ = false;
    std::string failure_;
    double cpu_ = 0;
    std::thread thread_;  // last: starts once everything above exists
};

}  // namespace

result run(transport& t, const config& cfg_in) {
    config cfg = detail::prepared(cfg_in);
    t.check(cfg);
    t.before_fork(cfg);

    affinity_restore restore;
    server_thread server(t, cfg);
    pin_to_cpu(cfg.cpu_client);
    t.in_process(role::client, cfg);
    auto endpoint = server.endpoint();
    if (!endpoint) {
        server.finish(true);
        throw bench_error("the server failed before listening: " + server.failure());
    }

    result r;
    double client_cpu = 0;
    const auto wall_start = clock::now();
    try {
        r = detail::run_client(t, cfg, *endpoint, &client_cpu);
    } catch (const std::exception& e) {
        server.finish(true);
        if (server.failure().empty())
            throw;
        throw bench_error(std::string(e.what()) + " (the server had failed: " + server.failure() +
                          ")");
    }
    const double wall = std::chrono::duration<double>(clock::now() - wall_start).count();
    server.finish(false);
    if (!server.failure().empty())
        throw bench_error("the server failed: " + server.failure());
    const auto ops = static_cast<double>(detail::total_operations(cfg));
    r.cpu_client_us = client_cpu * 1e6 / ops;
    r.cpu_server_us = server.cpu_seconds() * 1e6 / ops;
    if (wall > 0) {
        r.cpu_client_share = client_cpu / wall;
        r.cpu_server_share = server.cpu_seconds() / wall;
    }
    return r;
}

}  // namespace npipe::bench
