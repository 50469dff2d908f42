// npipe::asio's hook for remote pipes: npipe::remote installs its connector here when linked
// (as it installs the synchronous one in core/remote_hook.hpp), so the asynchronous client
// never includes remote code.
#pragma once

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>

#include "core/transport.hpp"
#include "npipe/options.hpp"

namespace npipe::asio::detail {

/// What one attempt to open a pipe through a gateway came to.
struct remote_outcome {
    std::error_code ec;
    /// On success: the relayed connection (its end_of_stream_error() tells a dead network
    /// from the remote peer's close).
    std::shared_ptr<npipe::detail::transport> connection;
    bool message = false;
    bool retry = false;  ///< "unknown pipe" or "pipe busy": worth asking again
};

/// What a waiting async_connect knows of its attempt in flight.
struct remote_wait {
    bool ready = false, abandoned = false;
    remote_outcome outcome;
    std::function<void()> cancel;  ///< abandons the attempt
};

/// One attempt, run on `ex`; it fills `wait` and calls `wake` there exactly once.
using remote_connect_fn = void (*)(const ::asio::any_io_executor& ex, std::string_view server,
                                   std::string_view name, const pipe_options& options,
                                   std::optional<std::chrono::steady_clock::time_point> deadline,
                                   std::shared_ptr<remote_wait> wait, std::function<void()> wake);

/// Installs the connector (npipe::enable_remote_pipes does). Thread-safe.
void set_remote_connector(remote_connect_fn connector) noexcept;

}  // namespace npipe::asio::detail
