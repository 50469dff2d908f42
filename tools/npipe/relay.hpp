// `serve` and `connect`'s copy between the pipe and stdin/stdout: npipe::relay plus what a
// terminal user sees (the reason a transfer did not complete, a progress line).
#pragma once

#include <CLI/CLI.hpp>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "npipe/pipe_stream.hpp"
#include "npipe/relay.hpp"

namespace npipe::cli {

/// How chatty the long-running commands are (--quiet / --verbose).
enum class verbosity { quiet, normal, verbose };
/// Set by the -q/-v flags (before or after the subcommand).
extern verbosity output_level;

/// Adds -q/--quiet and -v/--verbose to `cmd` (the app, and each long-running subcommand).
void add_verbosity_flags(CLI::App* cmd);

/// A progress line on stderr ("\r" + line(seconds so far)) once a second from the second
/// second on, while the object lives, erased at its end; only when stderr is a terminal and
/// not --quiet. `line` runs on the progress thread.
class progress_line {
  public:
    explicit progress_line(std::function<std::string(double seconds)> line);
    ~progress_line();
    /// Whether a line will show (stderr is a terminal and output is not quiet).
    bool active() const noexcept { return thread_.joinable(); }
    progress_line(const progress_line&) = delete;
    progress_line& operator=(const progress_line&) = delete;

  private:
    void run();
    std::function<std::string(double)> line_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    bool shown_ = false;
    std::thread thread_;
};

/// Relays stdin and stdout through `pipe` (npipe::relay). A transfer that did not complete is
/// reported on stderr in one line and returns 1; a complete one returns 0. When the peer hung up
/// while stdin is a terminal with nothing typed, nothing was lost: a note, and 0. With stderr a
/// terminal, a progress line (bytes, rate) shows while a long transfer runs. `result`, when not
/// null, receives the relay's own account.
int relay_stdio(pipe_stream& pipe, const relay_options& options = {},
                std::vector<std::byte>* carry = nullptr, relay_result* result = nullptr);

}  // namespace npipe::cli
