// npipe/rpc/command_handler.hpp: a handler that answers with a program's output (what
// `npipe rpc serve NAME -- CMD...` runs for every request).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "npipe/rpc/handler.hpp"

namespace npipe::rpc {

/// A handler for any method: runs `argv` with the method name appended (npipe::spawn), the
/// params as JSON on its stdin (nothing for none), and answers with its stdout parsed as JSON
/// (empty output: null; not JSON: the text as a string). A non-zero exit answers
/// errc::internal_error with the program's stderr (trimmed) as the message and
/// {"exit_code": N} (or "signal") as data. A cancelled request kills the program. Output past
/// `max_output` bytes kills it too and answers an error. Failing to start it answers an error
/// naming the program.
raw_handler command_handler(std::vector<std::string> argv, std::size_t max_output = 16u << 20);

}  // namespace npipe::rpc
