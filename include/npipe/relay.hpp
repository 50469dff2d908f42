// A two-way copy between a connected pipe and two local handles (netcat's core): what
// `npipe serve` and `npipe connect` run, for programs that want the same.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "npipe/pipe_stream.hpp"

namespace npipe {

/// Bytes a relay has moved so far, readable from any thread while it runs (for a progress
/// display).
struct relay_counters {
    std::atomic<std::uint64_t> sent{0};      ///< from the input to the pipe
    std::atomic<std::uint64_t> received{0};  ///< from the pipe to the output
};

/// Limits a relay puts on its peer; zero means none.
struct relay_options {
    /// End the relay when no byte has moved either way for this long.
    std::chrono::milliseconds idle_timeout{0};
    /// End the relay when a write to the peer makes no progress for this long (the peer has
    /// stopped reading).
    std::chrono::milliseconds write_timeout{0};
    /// Updated as bytes move, when not null; must outlive the relay() call.
    relay_counters* counters = nullptr;
};

/// Why a relay ended.
enum class relay_end {
    completed,      ///< both directions reached their end: nothing was lost
    peer_closed,    ///< the peer closed the pipe before our input ended (the rest is unsent)
    output_closed,  ///< our output's reader went away before the pipe's data ended
    idle_timeout,   ///< nothing moved for relay_options::idle_timeout
    write_timeout,  ///< the peer read nothing for relay_options::write_timeout
    cancelled,      ///< the pipe was closed by another thread while the relay ran
    failed,         ///< a read or write failed: relay_result::error says why
};

/// How a relay ended, with what it moved.
struct relay_result {
    relay_end end = relay_end::completed;
    std::error_code error;         ///< the failure, for relay_end::failed
    std::string_view operation;    ///< what failed: "read from the input", "write to the pipe", ...
    bool input_ended = false;      ///< the input reached its end (the pipe's write side was shut)
    std::uint64_t bytes_sent = 0;  ///< input to pipe
    std::uint64_t bytes_received = 0;  ///< pipe to output

    /// True when the relay completed: every byte of both directions was delivered.
    bool ok() const noexcept { return end == relay_end::completed; }
    /// One line saying why the relay did not complete ("" when it did), naming the pipe, e.g.
    /// "pipe 'x': the peer closed the pipe before our input ended (12 bytes sent)".
    std::string describe(std::string_view pipe_name, const relay_options& options = {}) const;
};

/// Copies `input` to the pipe and the pipe to `output` at the same time, so that neither
/// direction can block the other. `input` and `output` are handles of the platform (file
/// descriptors on POSIX: a file, a terminal, a pipe or a socket; HANDLEs on Windows, read and
/// written synchronously).
///
/// At the end of the input the pipe's write side is shut down and the pipe is read to its end;
/// the call returns when both directions are done. It returns early, at once, when the peer has
/// closed the pipe entirely (not a half-close) while our input is still open, when our output's
/// reader goes away (the pipe is then closed, so the peer learns of it), when a timeout of
/// `options` expires (the pipe is closed), and on a failure. A pipe that can only read or
/// only write (pipe_direction) relays one way.
///
/// `carry` (may be null) holds input read but not delivered because the peer went away: it is
/// sent first, and refilled on such a failure, so a caller that reconnects loses no input that
/// never reached a peer. The write timeout sets the pipe's send timeout (SO_SNDTIMEO on POSIX)
/// for as long as the pipe lives; on Windows a watchdog thread closes the pipe when a write has
/// made no progress for that long. On Windows the write side is shut down with an empty write
/// (pipe_stream::shutdown_write()), which Wine drops: there a relay learns the end of its
/// peer's input only when the peer closes. Never raises SIGPIPE.
relay_result relay(pipe_stream& pipe, pipe_stream::native_handle_type input,
                   pipe_stream::native_handle_type output, const relay_options& options = {},
                   std::vector<std::byte>* carry = nullptr);

}  // namespace npipe
