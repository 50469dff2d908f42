// The .NET semantics of named pipes, in one place for the synchronous and asynchronous layers:
// a connect attempt that discovers the pipe's type, the current_user_only and accept_peer
// checks, the connect wait's backoff (npipe/detail/connect_backoff.hpp). The platform does the I/O
// (core/platform.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <system_error>

#include "core/platform.hpp"
#include "core/transport.hpp"
#include "npipe/detail/connect_backoff.hpp"
#include "npipe/options.hpp"

namespace npipe::detail {

/// One connect attempt to a local pipe, learning its type: a byte-mode connection first; a
/// server of the other type (message mode) refuses it before a byte moves, and the attempt is
/// made again as a message connection. With current_user_only a server of another user fails
/// with errc::access_denied. `message` says which type connected.
std::shared_ptr<transport> connect_local(const std::string& endpoint, const pipe_options& options,
                                         bool& message, platform::connect_status& status,
                                         std::error_code& ec) noexcept;

/// As .NET: an `in` end shuts its write side down right after connecting, an `out` end its read
/// side, so the wire behaviour matches a .NET peer.
void apply_direction(transport& connection, pipe_direction direction) noexcept;

/// Whether an accepted client may stay: its credentials pass current_user_only and
/// accept_peer (an exception counts as a refusal). False when the credentials cannot be read.
bool admit_peer(const transport& connection, const pipe_options& options) noexcept;

}  // namespace npipe::detail
