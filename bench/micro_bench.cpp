// Google Benchmark micro-benchmarks of npipe's hot internals that need no peer. Run:
//   build-bench/bench/micro_bench [--benchmark_filter=REGEX]
// Message framing benchmarks join these when message mode lands.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <string>
#include <system_error>

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

BENCHMARK_MAIN();
