// Helpers for the Windows tests: knowing when we run under Wine (whose gaps are skipped with
// their reason, never passed), and running this test program again as a peer process.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/pipe_stream.hpp"
#include "npipe/process.hpp"

namespace npipe::test::windows {

/// Wine's version when this process runs under Wine (ntdll exports wine_get_version), else
/// nullptr.
const char* wine_version() noexcept;

/// A test that checks a behaviour Wine does not implement: skipped under Wine with the gap
/// named (README, "Windows": the Wine gaps), run for real on Windows.
#define NPIPE_SKIP_ON_WINE(gap)                                                       \
    do {                                                                              \
        if (const char* wine = ::npipe::test::windows::wine_version())                \
            GTEST_SKIP() << "Wine " << wine << " does not implement this: " << (gap); \
    } while (0)

/// Bytes waiting to be read on `pipe`, without reading them (PeekNamedPipe; a failure is a
/// test failure).
unsigned long bytes_waiting(const npipe::pipe_stream& pipe);

/// The path of this test program, or of the program `name` beside it.
std::string program_path(const std::string& name = {});

/// This test program started again with `args` (its main() runs the peer role they name), or
/// the program `program` beside it, through npipe::spawn; ended at destruction if still running.
class peer_process {
  public:
    explicit peer_process(const std::vector<std::string>& args, const std::string& program = {},
                          npipe::process_options options = {});

    /// The exit code, or nullopt when it is still running after `timeout`.
    std::optional<unsigned long> wait(std::chrono::milliseconds timeout);

  private:
    npipe::child_process child_;
};

}  // namespace npipe::test::windows
