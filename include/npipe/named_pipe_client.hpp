// npipe/named_pipe_client.hpp: the client end of a named pipe (.NET's NamedPipeClientStream).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/options.hpp"
#include "npipe/pipe_stream.hpp"

namespace npipe {

/// A client of a named pipe on this machine. The name maps to a socket path as in .NET
/// (pipe_path()); a server written with .NET, Mono or npipe can be on the other end.
class named_pipe_client : public pipe_stream {
  public:
    /// A duplex client of the pipe `name` on this machine.
    explicit named_pipe_client(std::string_view name);

    /// server_name "." (or "localhost", or this host's name) is this machine. Throws pipe_error
    /// with errc::invalid_name or errc::path_too_long for a name that cannot be a pipe.
    /// Another machine ("host", "host:port", "[v6]:port") is reached through its
    /// `npipe gateway` over TLS 1.3 when npipe::remote is linked (options.remote holds the TLS
    /// settings, npipe/remote_options.hpp; docs/protocol.md, "Remote pipes"), and the pipe then
    /// behaves as a local one; without npipe::remote it throws errc::not_supported.
    /// socket_path() is then "//HOST/pipe/NAME".
    named_pipe_client(std::string_view server_name, std::string_view name,
                      pipe_direction direction = pipe_direction::in_out, pipe_options options = {});

    /// Connects, waiting as long as it takes for a server to appear.
    void connect();
    void connect(std::error_code& ec) noexcept;

    /// Connects, waiting at most `timeout` for a server to appear (errc::timed_out after).
    /// Returns as soon as the server's socket appears: the wait watches the directory
    /// (inotify) and re-tries with a backoff capped at 100 ms, so it never spins a CPU.
    /// close() from another thread ends the wait with errc::operation_aborted.
    void connect(std::chrono::milliseconds timeout);
    void connect(std::chrono::milliseconds timeout, std::error_code& ec) noexcept;

    /// The socket file this client connects to.
    const std::string& socket_path() const noexcept;
};

}  // namespace npipe
