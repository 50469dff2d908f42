// npipe/asio/named_pipe_client.hpp: the client end of a named pipe for Asio (the async
// counterpart of npipe::named_pipe_client, .NET's NamedPipeClientStream.ConnectAsync).
#pragma once

#include <asio/compose.hpp>

#include <chrono>
#include <string>
#include <string_view>

#include "npipe/asio/detail/connect_op.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"
#include "npipe/options.hpp"

namespace npipe::asio {

/// A client of a named pipe on this machine, for Asio. The name maps to a socket path as in
/// .NET (npipe::pipe_path()); a server written with .NET, Mono or npipe (synchronous or
/// asynchronous) can be on the other end. Once connected it is a pipe_stream.
class named_pipe_client : public pipe_stream {
  public:
    /// A client of the pipe `name` on `ex`. Throws npipe::pipe_error with errc::invalid_name or
    /// errc::path_too_long for a name that cannot be a pipe. Options as for
    /// npipe::named_pipe_client: current_user_only refuses a server of another user,
    /// max_message_size limits messages on a message pipe, the buffer sizes set SO_RCVBUF /
    /// SO_SNDBUF.
    named_pipe_client(const executor_type& ex, std::string_view name,
                      pipe_direction direction = pipe_direction::in_out, pipe_options options = {});
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, ::asio::execution_context&> named_pipe_client(
        ExecutionContext& context, std::string_view name,
        pipe_direction direction = pipe_direction::in_out, pipe_options options = {})
        : named_pipe_client(context.get_executor(), name, direction, options) {}

    /// A client of the pipe `name` on the machine `server_name`: "." or "localhost" is this
    /// one; any other ("host", "host:port", "[v6]:port") is reached through that machine's
    /// `npipe gateway` over TLS 1.3 with the settings in options.remote, which needs
    /// npipe::remote linked (npipe/remote_options.hpp). The connect, TLS handshake and request
    /// run on `ex`, and so does the forwarding afterwards (a local socket pair whose other end
    /// is relayed to the TLS connection): no thread per connection. Once connected, reads,
    /// writes, end of stream and half-close behave as on a local pipe.
    named_pipe_client(const executor_type& ex, std::string_view server_name, std::string_view name,
                      pipe_direction direction = pipe_direction::in_out, pipe_options options = {});
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, ::asio::execution_context&> named_pipe_client(
        ExecutionContext& context, std::string_view server_name, std::string_view name,
        pipe_direction direction = pipe_direction::in_out, pipe_options options = {})
        : named_pipe_client(context.get_executor(), server_name, name, direction, options) {}

    /// Connects, waiting as long as it takes for a server to appear; completes with
    /// (error_code). The wait watches the socket's directory (inotify) and retries with a
    /// backoff capped at 100 ms, so it never spins a CPU. The pipe's type (byte or message) is
    /// learnt here. Errors: npipe::errc::already_connected, access_denied (current_user_only),
    /// ::asio::error::operation_aborted when cancelled, closed or destroyed meanwhile.
    /// Supports terminal, partial and total cancellation.
    template <class CompletionToken>
    auto async_connect(CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code)>(
            detail::connect_op{{impl()}}, token, get_executor());
    }

    /// A remote pipe waits the same way for its gateway's "unknown pipe" or "pipe busy" (asking
    /// again after a backoff of 20 ms to 500 ms) and fails at once on its other refusals:
    /// errc::access_denied (not allowed, bad token, refused or untrusted certificate),
    /// std::errc::connection_refused (gateway shutting down or not listening),
    /// errc::protocol_error.
    ///
    /// As above, failing with npipe::errc::timed_out when no server appears within `timeout`.
    /// A remote connect with timeout 0 makes one attempt and fails with the gateway's answer
    /// (std::errc::no_such_file_or_directory, errc::all_instances_busy).
    template <class CompletionToken>
    auto async_connect(std::chrono::milliseconds timeout, CompletionToken&& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code)>(
            detail::connect_op{{impl()}, std::chrono::steady_clock::now() + timeout}, token,
            get_executor());
    }

    /// The socket file this client connects to.
    const std::string& socket_path() const noexcept;
};

}  // namespace npipe::asio
