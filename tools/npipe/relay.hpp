// Copies between a connected pipe and two local descriptors, like netcat.
#pragma once

#include "npipe/pipe_stream.hpp"

namespace npipe::cli {

/// Copies in_fd to the pipe and the pipe to out_fd at the same time (two threads, so neither
/// direction can block the other). At in_fd's end the pipe's write side is shut down; the call
/// returns when both directions are done, or when the peer has closed the pipe entirely.
/// Returns 0, or 1 after printing why a direction failed.
int relay(pipe_stream& pipe, int in_fd = 0, int out_fd = 1);

}  // namespace npipe::cli
