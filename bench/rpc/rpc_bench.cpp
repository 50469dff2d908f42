// The JSON-RPC benchmark's npipe end (bench/run.sh's "rpc" rows): npipe::rpc's asynchronous
// connection over a named pipe, header framing, every connection of a process on one
// io_context thread (as a server for many clients would be written), with the same command line
// as its StreamJsonRpc (bench/rpc/dotnet) and vscode-jsonrpc (bench/rpc/node) counterparts, so
// any client runs against any server:
//   rpc_bench server NAME                         serves `add` [a, b] -> a + b to every client
//                                                 (prints "listening"; until killed)
//   rpc_bench client NAME CLIENTS CALLS           CLIENTS connections at once, CALLS calls in
//                                                 all, each connection calling one after the other
// The client prints one JSON line: calls per second over the timed calls of all connections
// together, and the median and p99 of the calls' latencies.
#include <signal.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <npipe/asio/named_pipe_acceptor.hpp>
#include <npipe/asio/named_pipe_client.hpp>
#include <npipe/rpc/async_connection.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace npipe;
using clock_type = std::chrono::steady_clock;

::asio::awaitable<void> accept_loop(npipe::asio::named_pipe_acceptor& acceptor) {
    for (;;) {
        auto [ec, pipe] =
            co_await acceptor.async_accept(::asio::experimental::as_tuple(::asio::use_awaitable));
        if (ec)
            continue;  // a client gone before it was accepted
        // The connection lives while its reading loop runs: no handle needs keeping.
        rpc::async_connection conn(std::move(pipe));
        conn.add_method("add", [](int a, int b) { return a + b; });
        conn.start();
    }
}

int serve(const std::string& name) {
    // Until killed: bench/run.sh runs it in its temp directory, which it removes with the socket.
    ::asio::io_context io(1);
    npipe::asio::named_pipe_acceptor acceptor(io, name);
    std::cout << "listening" << std::endl;
    ::asio::co_spawn(io, accept_loop(acceptor), [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    io.run();
    return 0;
}

double percentile(const std::vector<double>& sorted, double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// What the clients share: connections still warming up, and the timing's start and end.
struct run_state {
    int warming = 0;  // clients not yet connected and warmed up
    int timing = 0;   // clients still in their timed calls
    clock_type::time_point start, end;
    ::asio::steady_timer* all_warm = nullptr;  // cancelled when the last client is warm
    std::string error;
};

::asio::awaitable<void> one_client(::asio::io_context& io, std::string name, long share,
                                   run_state& state, std::vector<double>& mine) {
    npipe::asio::named_pipe_client pipe(io, name);
    co_await pipe.async_connect(std::chrono::seconds(30), ::asio::use_awaitable);
    rpc::async_connection conn(std::move(pipe));
    conn.start();
    const rpc::json one_two = rpc::json::array({1, 2});
    for (long i = 0, warm = std::max(100L, share / 5); i < warm; ++i)
        co_await conn.async_call("add", one_two, ::asio::use_awaitable);
    // Every client connected and warmed up: the timing starts.
    if (--state.warming == 0) {
        state.start = clock_type::now();
        state.all_warm->cancel();
    } else {
        // Cancelled by the last client to warm up: that is the wake-up, not an error.
        co_await state.all_warm->async_wait(::asio::experimental::as_tuple(::asio::use_awaitable));
    }
    mine.reserve(static_cast<std::size_t>(share));
    for (long i = 0; i < share; ++i) {
        auto t0 = clock_type::now();
        auto r = co_await conn.async_call("add", one_two, ::asio::use_awaitable);
        auto t1 = clock_type::now();
        if (r != 3)
            throw std::runtime_error("add [1,2] returned " + r.dump());
        mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    if (--state.timing == 0)
        state.end = clock_type::now();
    conn.close();
}

int run_clients(const std::string& name, int clients, long calls) {
    ::asio::io_context io(1);
    ::asio::steady_timer all_warm(io, clock_type::time_point::max());
    run_state state;
    state.warming = state.timing = clients;
    state.all_warm = &all_warm;
    std::vector<std::vector<double>> samples(static_cast<std::size_t>(clients));
    for (int slot = 0; slot < clients; ++slot) {
        const long share = calls / clients + (slot < calls % clients ? 1 : 0);
        ::asio::co_spawn(
            io, one_client(io, name, share, state, samples[static_cast<std::size_t>(slot)]),
            [&](std::exception_ptr e) {
                if (!e)
                    return;
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& x) {
                    if (state.error.empty())
                        state.error = x.what();
                }
                io.stop();  // the others would wait for this one forever
            });
    }
    io.run();
    if (!state.error.empty()) {
        std::cerr << "rpc_bench client: " << state.error << '\n';
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
    const double secs = std::chrono::duration<double>(state.end - state.start).count();
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
