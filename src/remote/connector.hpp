// The core's hook for remote pipes. The core library stays libc-only: npipe::remote (OpenSSL,
// Asio) registers a connector here, and named_pipe_client calls it for a server name that is
// not this machine. Without it such a name fails with errc::not_supported.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/options.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::detail {

/// What keeps a remote connection's relay informed of the client's fate, and tells the client
/// how the connection failed.
class remote_link {
  public:
    virtual ~remote_link() = default;
    /// The error that ended the relayed connection (a dead network: timed_out), or none.
    virtual std::error_code failure() const noexcept = 0;
    /// Ends the relay once the pipe's end of the connection is shut down: it first lets the
    /// relay deliver what was written (bounded, as SO_LINGER), then stops it and releases
    /// its thread, descriptors and TLS state. Idempotent.
    virtual void close() noexcept = 0;
};

struct remote_connection {
    unique_fd fd;          ///< a local socket whose other end is relayed to the gateway
    bool message = false;  ///< SOCK_SEQPACKET carrying frames: a message-mode pipe
    std::shared_ptr<remote_link> link;
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

/// Registers the connector (npipe::remote does, see npipe::enable_remote_pipes). Thread-safe.
void set_remote_connector(remote_connect_fn connector) noexcept;
/// The registered connector, or null.
remote_connect_fn remote_connector() noexcept;

}  // namespace npipe::detail
