// `serve` and `connect`'s copy between the pipe and stdin/stdout: npipe::relay plus what a
// terminal user sees (the reason a transfer did not complete, a progress line).
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
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

/// Relays stdin and stdout through `pipe` (npipe::relay). A transfer that did not complete is
/// reported on stderr in one line and returns 1; a complete one returns 0. When the peer hung up
/// while stdin is a terminal with nothing typed, nothing was lost: a note, and 0. With stderr a
/// terminal, a progress line (bytes, rate) shows while a long transfer runs. `result`, when not
/// null, receives the relay's own account.
int relay_stdio(pipe_stream& pipe, const relay_options& options = {},
                std::vector<std::byte>* carry = nullptr, relay_result* result = nullptr);

}  // namespace npipe::cli
