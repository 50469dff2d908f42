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

/// Waits until a server listens on the pipe `name` (an instance a client could open:
/// WaitNamedPipeW), up to `timeout`; true when one does.
bool server_listens(const std::string& name,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20));

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

/// A command line started in a process group of its own (CREATE_NEW_PROCESS_GROUP), on a
/// console this process shares (allocated when it has none), so that it can be sent a console
/// event alone; terminated at destruction if still running.
class console_group_process {
  public:
    explicit console_group_process(std::string command_line);
    ~console_group_process();
    console_group_process(const console_group_process&) = delete;
    console_group_process& operator=(const console_group_process&) = delete;

    /// Sends Ctrl+Break (SIGBREAK in the C runtime) to the group and waits up to `timeout` for
    /// the process to end: its exit code. Under Wine, which cannot deliver console events
    /// without a terminal, the test is skipped (check testing::Test::IsSkipped()).
    std::optional<unsigned long> ctrl_break_and_wait(std::chrono::milliseconds timeout);

  private:
    void* process_ = nullptr;
    unsigned long pid_ = 0;
};

}  // namespace npipe::test::windows
