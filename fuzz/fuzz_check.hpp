// What every npipe fuzz target does when one of its checks fails: say which check and where on
// stderr, then abort, which libFuzzer reports as a crash with the input that caused it (and the
// tests that run the entry points directly report as a dead test).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace npipe::fuzz {

[[noreturn]] inline void check_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
    std::abort();
}

/// Deterministic pseudo-random numbers (xorshift32) seeded from the input, for chunking.
struct rng {
    std::uint32_t x;
    std::uint32_t next() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    }
    std::size_t below(std::size_t n) { return n ? next() % n : 0; }
};

}  // namespace npipe::fuzz

/// Aborts the fuzz run when `cond` is false (also in release builds, unlike assert).
#define FUZZ_CHECK(cond)                                            \
    do {                                                            \
        if (!(cond))                                                \
            ::npipe::fuzz::check_failed(#cond, __FILE__, __LINE__); \
    } while (0)
