// What harness.cpp (the measuring, the same everywhere) shares with the platform's run():
// harness_posix.cpp forks the server into a process, harness_windows.cpp runs it on a thread.
#pragma once

#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace npipe::bench::detail {

/// cfg with its defaults applied, checked (bench_error on a bad combination).
config prepared(const config& cfg);

/// The server's whole schedule for client slot `slot`: accepts, echoes or acknowledges.
void serve_slot(transport& t, listener& l, const config& cfg, int slot);

/// The client's whole schedule against `endpoint` and its figures. `cpu_seconds`, when not
/// null, receives the CPU time its slots took (the threads that ran them).
result run_client(transport& t, const config& cfg, const std::string& endpoint,
                  double* cpu_seconds = nullptr);

/// Fills r's latency figures (samples, median, percentiles, mean, min, max) from round trips
/// in microseconds; bench_error when there is none.
void set_latency_figures(result& r, std::vector<double> round_trips_us);

/// s as a JSON string literal, quotes included.
std::string json_string(std::string_view s);
/// One number formatted by printf format f.
std::string fmt(const char* f, double v);
/// "64 KiB", "1 MiB", "100 B".
std::string human_size(std::size_t n);
/// "server on CPU 0, client on CPU 1".
std::string placement(const config& c);

/// Every operation of the run, warm-up included: what the CPU times are divided by.
std::size_t total_operations(const config& cfg);

/// The CPU time (user + system) the calling thread has used, in seconds.
double thread_cpu_seconds();

/// Pins the calling thread to `cpu` where a pin does not pass to the threads a thread creates
/// (Windows: pin_to_cpu pins a thread); elsewhere, and for -1, nothing.
void pin_thread(int cpu);

/// Prints "<who>: <what>" and ends the process with status 1.
[[noreturn]] void die(const char* who, const char* what);

/// Runs f(slot) for every slot: on this thread for one client, else on one thread each (pinned
/// to `cpu` with pin_thread). A failing thread ends the process: the other threads may be
/// waiting on it at a barrier. Returns the CPU seconds the work took: this thread's while it
/// ran, plus every started thread's.
template <class F>
double for_each_slot(int clients, int cpu, const char* who, F&& f) {
    const double before = thread_cpu_seconds();
    if (clients == 1) {
        f(0);
        return thread_cpu_seconds() - before;
    }
    std::mutex mutex;
    double threads_cpu = 0;
    std::vector<std::thread> threads;
    for (int slot = 0; slot < clients; ++slot)
        threads.emplace_back([&, slot] {
            try {
                pin_thread(cpu);
                f(slot);
            } catch (const std::exception& e) {
                die(who, e.what());
            }
            double used = thread_cpu_seconds();
            std::lock_guard lock(mutex);
            threads_cpu += used;
        });
    for (auto& th : threads)
        th.join();
    return thread_cpu_seconds() - before + threads_cpu;
}

}  // namespace npipe::bench::detail
