// The JSON-RPC benchmark's npipe end (bench/run.sh's "rpc" rows): npipe::rpc over a named pipe,
// header framing, with the same command line as its StreamJsonRpc (bench/rpc/dotnet) and
// vscode-jsonrpc (bench/rpc/node) counterparts, so any client runs against any server:
//   rpc_bench server NAME                         serves `add` [a, b] -> a + b to every client
//                                                 (prints "listening"; until killed)
//   rpc_bench client NAME CLIENTS CALLS           CLIENTS connections at once, CALLS calls in
//                                                 all, each connection calling one after the other
// The client prints one JSON line: calls per second over the timed calls of all connections
// together, and the median and p99 of the calls' latencies.
#include <signal.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/rpc/rpc.hpp"

namespace {

using namespace npipe;
using clock_type = std::chrono::steady_clock;

int serve(const std::string& name) {
    // Until killed: bench/run.sh runs it in its temp directory, which it removes with the socket.
    struct session {
        std::unique_ptr<named_pipe_server> pipe;
        std::unique_ptr<rpc::connection> conn;
    };
    std::list<session> sessions;
    for (bool announced = false;; announced = true) {
        sessions.remove_if([](const session& s) { return !s.conn->is_open(); });
        auto pipe = std::make_unique<named_pipe_server>(name, pipe_direction::in_out,
                                                        max_allowed_server_instances);
        if (!announced)
            std::cout << "listening" << std::endl;
        std::error_code ec;
        pipe->wait_for_connection(ec);
        if (ec)
            continue;  // a client gone before it was accepted
        auto conn = std::make_unique<rpc::connection>(*pipe);
        conn->add_method("add", [](int a, int b) { return a + b; });
        conn->start();
        sessions.push_back({std::move(pipe), std::move(conn)});
    }
}

double percentile(const std::vector<double>& sorted, double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

int run_clients(const std::string& name, int clients, long calls) {
    std::vector<std::vector<double>> samples(static_cast<std::size_t>(clients));
    std::vector<clock_type::time_point> marks;
    std::barrier sync(clients, [&marks]() noexcept { marks.push_back(clock_type::now()); });
    std::vector<std::thread> threads;
    std::mutex error_mutex;
    std::string error;
    for (int slot = 0; slot < clients; ++slot) {
        const long share = calls / clients + (slot < calls % clients ? 1 : 0);
        threads.emplace_back([&, slot, share] {
            auto& mine = samples[static_cast<std::size_t>(slot)];
            std::unique_ptr<named_pipe_client> pipe;
            std::unique_ptr<rpc::connection> conn;
            try {
                pipe = std::make_unique<named_pipe_client>(name);
                pipe->connect(std::chrono::seconds(30));
                conn = std::make_unique<rpc::connection>(*pipe);
                conn->start();
                for (long i = 0, warm = std::max(100L, share / 5); i < warm; ++i)
                    conn->call("add", rpc::json::array({1, 2}));
            } catch (const std::exception& e) {
                std::lock_guard lock(error_mutex);
                error = e.what();
            }
            sync.arrive_and_wait();  // every client connected and warmed up: the timing starts
            if (conn) {
                mine.reserve(static_cast<std::size_t>(share));
                try {
                    for (long i = 0; i < share; ++i) {
                        auto t0 = clock_type::now();
                        auto r = conn->call("add", rpc::json::array({1, 2}));
                        auto t1 = clock_type::now();
                        if (r != 3)
                            throw std::runtime_error("add [1,2] returned " + r.dump());
                        mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
                    }
                } catch (const std::exception& e) {
                    std::lock_guard lock(error_mutex);
                    error = e.what();
                }
            }
            sync.arrive_and_wait();
        });
    }
    for (auto& t : threads)
        t.join();
    if (!error.empty()) {
        std::cerr << "rpc_bench client: " << error << '\n';
        return 1;
    }
    std::vector<double> all;
    for (auto& s : samples)
        all.insert(all.end(), s.begin(), s.end());
    if (all.empty()) {
        std::cerr << "rpc_bench client: no call was timed (CALLS must be at least CLIENTS)\n";
        return 1;
    }
    std::sort(all.begin(), all.end());
    const double secs = std::chrono::duration<double>(marks[1] - marks[0]).count();
    const double rate = static_cast<double>(all.size()) / secs;
    std::printf(
        "{\"system\":\"npipe\",\"test\":\"rpc\",\"clients\":%d,\"count\":%zu,"
        "\"calls_per_s\":%.1f,\"rounds\":[%.1f],\"median_us\":%.3f,\"p99_us\":%.3f}\n",
        clients, all.size(), rate, rate, percentile(all, 50), percentile(all, 99));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.size() == 2 && args[0] == "server")
            return serve(args[1]);
        if (args.size() == 4 && args[0] == "client")
            return run_clients(args[1], std::stoi(args[2]), std::stol(args[3]));
    } catch (const std::exception& e) {
        std::cerr << "rpc_bench: " << e.what() << '\n';
        return 1;
    }
    std::cerr << "usage: rpc_bench server NAME | rpc_bench client NAME CLIENTS CALLS\n";
    return 2;
}
