// A client's open of \\.\pipe\NAME, shared by the synchronous client (core/platform.hpp's
// connect) and npipe::asio's, which must never block its executor in WaitNamedPipeW.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "core/platform.hpp"
#include "core/transport.hpp"

namespace npipe::detail::win {

/// One attempt to open the pipe at `endpoint` as an overlapped client handle, in message read
/// mode on a message pipe. No server yet (ERROR_FILE_NOT_FOUND) or every instance busy
/// (ERROR_PIPE_BUSY) is status retry; with `wait_when_busy` a busy pipe is first waited for
/// briefly in WaitNamedPipeW (returning as soon as an instance is free).
std::shared_ptr<transport> open_client(const std::string& endpoint, bool wait_when_busy,
                                       platform::connect_status& status,
                                       std::error_code& ec) noexcept;

}  // namespace npipe::detail::win
