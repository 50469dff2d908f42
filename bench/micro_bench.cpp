// Google Benchmark micro-benchmarks of npipe's hot internals, on one thread. Run:
//   build-bench/bench/micro_bench [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <string>
#include <system_error>

#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/pipe_name.hpp"

namespace {

// The common case: a simple name mapped under the temp directory.
void pipe_path_simple(benchmark::State& state) {
    for (auto _ : state)
        benchmark::DoNotOptimize(npipe::pipe_path("my-service.rpc"));
}
BENCHMARK(pipe_path_simple);

// The same with $TMPDIR set, which every call re-reads (as .NET does).
void pipe_path_tmpdir(benchmark::State& state) {
    ::setenv("TMPDIR", "/run/user/1000/tmp", 1);
    for (auto _ : state)
        benchmark::DoNotOptimize(npipe::pipe_path("my-service.rpc"));
    ::unsetenv("TMPDIR");
}
BENCHMARK(pipe_path_tmpdir);

// A rooted name is the socket path itself: only validation.
void pipe_path_rooted(benchmark::State& state) {
    for (auto _ : state)
        benchmark::DoNotOptimize(npipe::pipe_path("/run/my-service/socket"));
}
BENCHMARK(pipe_path_rooted);

// The longest name that fits sockaddr_un (91 bytes after /tmp/CoreFxPipe_).
void pipe_path_longest(benchmark::State& state) {
    ::unsetenv("TMPDIR");
    std::string name(91, 'n');
    for (auto _ : state)
        benchmark::DoNotOptimize(npipe::pipe_path(name));
}
BENCHMARK(pipe_path_longest);

// Rejections through the error_code overload, which must stay cheap (no exception).
void pipe_path_rejected(benchmark::State& state) {
    std::string name(200, 'n');
    std::error_code ec;
    for (auto _ : state) {
        benchmark::DoNotOptimize(npipe::pipe_path(name, ec));
        benchmark::DoNotOptimize(ec);
    }
}
BENCHMARK(pipe_path_rejected);

// The reserved name is compared case-insensitively.
void pipe_path_reserved(benchmark::State& state) {
    std::error_code ec;
    for (auto _ : state) {
        benchmark::DoNotOptimize(npipe::pipe_path("Anonymous", ec));
        benchmark::DoNotOptimize(ec);
    }
}
BENCHMARK(pipe_path_reserved);

}  // namespace

// What npipe's byte-mode read and write add to the system calls they make, without the
// wake-ups that dominate a ping-pong between processes: one thread writes one byte into a
// connected pipe and reads it back at the other end, through npipe (byte_write_read_npipe) and
// through the same calls on a raw socketpair (byte_write_read_raw). The difference is npipe's
// own cost per write + read.
void byte_write_read_npipe(benchmark::State& state) {
    auto name = "npipe-micro-" + std::to_string(::getpid());
    npipe::named_pipe_server server(name, npipe::pipe_direction::in_out, 1);
    npipe::named_pipe_client client(".", name, npipe::pipe_direction::in_out);
    client.connect(std::chrono::seconds(10));
    server.wait_for_connection();
    std::array<std::byte, 1> out{std::byte{0x5a}}, in{};
    for (auto _ : state) {
        client.write(out);
        benchmark::DoNotOptimize(server.read(in));
    }
}
BENCHMARK(byte_write_read_npipe);

void byte_write_read_raw(benchmark::State& state) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        state.SkipWithError("socketpair failed");
        return;
    }
    std::array<std::byte, 1> out{std::byte{0x5a}}, in{};
    for (auto _ : state) {
        benchmark::DoNotOptimize(::send(fds[0], out.data(), out.size(), MSG_NOSIGNAL));
        benchmark::DoNotOptimize(::read(fds[1], in.data(), in.size()));
    }
    ::close(fds[0]);
    ::close(fds[1]);
}
BENCHMARK(byte_write_read_raw);

BENCHMARK_MAIN();
