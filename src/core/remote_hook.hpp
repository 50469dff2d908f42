// The core's hook for remote pipes. The core library stays libc-only: npipe::remote (OpenSSL,
// Asio) installs a connector here when it is linked, and named_pipe_client calls it for a
// server name that is not this machine. Without it such a name fails with errc::not_supported.
// (npipe::asio's own hook is in src/asio/remote_hook.hpp.)
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "core/transport.hpp"
#include "npipe/options.hpp"

namespace npipe::detail {

struct remote_connection {
    /// The relayed connection: its end_of_stream_error() tells a dead network from the remote
    /// peer's close, and end() winds the relay down.
    std::shared_ptr<transport> connection;
    bool message = false;  ///< a message-mode pipe (the transport keeps record boundaries)
    /// On failure: the gateway answered "unknown pipe" or "pipe busy", which a connect with
    /// time left retries, as a local connect waits for a server to appear or accept.
    bool retry = false;
};

/// Connects to pipe `name` through the gateway at `server` ("host" or "host:port"), by
/// `deadline` if given. On failure sets ec and `why` (a sentence for the error message).
using remote_connect_fn = remote_connection (*)(
    std::string_view server, std::string_view name, pipe_direction direction,
    const pipe_options& options, std::optional<std::chrono::steady_clock::time_point> deadline,
    std::error_code& ec, std::string& why);

/// Installs the connector (npipe::remote does, see npipe::enable_remote_pipes). Thread-safe.
void set_remote_connector(remote_connect_fn connector) noexcept;
/// The installed connector, or null.
remote_connect_fn remote_connector() noexcept;

/// Whether a pipe's server name means this machine: ".", "localhost" or our host name. Any
/// other is reached through that machine's gateway (npipe::remote).
bool is_local_server(std::string_view server) noexcept;

/// The path a remote client reports as its socket_path(): "//SERVER/pipe/NAME". Throws
/// pipe_error (errc::invalid_name) for a name a gateway would refuse.
std::string remote_path(std::string_view server, std::string_view name);

/// Whether `path` is a remote client's ("//SERVER/pipe/NAME"), and its server part.
bool is_remote_path(std::string_view path) noexcept;
std::string_view remote_server(std::string_view path) noexcept;

}  // namespace npipe::detail
