// Copies between a connected pipe and two local descriptors, like netcat.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "npipe/pipe_stream.hpp"

namespace npipe::cli {

/// Limits a relay puts on its peer; zero means none.
struct relay_options {
    /// End the relay when no byte has moved either way for this long (the peer is reported
    /// idle and the connection closed).
    std::chrono::milliseconds idle_timeout{0};
    /// End the relay when a write to the peer makes no progress for this long (the peer has
    /// stopped reading). Set as SO_SNDTIMEO on the connection.
    std::chrono::milliseconds write_timeout{0};
};

/// How a relay ended.
struct relay_outcome {
    int status = 0;         ///< 0, or 1 after printing why a direction failed or timed out
    bool finished = false;  ///< our side is done: input reached its end, or output was closed
};

/// Copies in_fd to the pipe and the pipe to out_fd at the same time (two threads, so neither
/// direction can block the other). At in_fd's end the pipe's write side is shut down; the call
/// returns when both directions are done, or when the peer has closed the pipe entirely.
/// `carry` (may be null) holds input read but not delivered because the peer went away: it is
/// sent first, and refilled on such a failure, so a caller that reconnects loses no input that
/// never reached a peer.
relay_outcome relay(pipe_stream& pipe, int in_fd, int out_fd, const relay_options& options,
                    std::vector<std::byte>* carry);

/// relay() without limits or carry-over. Returns 0, or 1 after printing why a direction failed.
int relay(pipe_stream& pipe, int in_fd = 0, int out_fd = 1);

}  // namespace npipe::cli
