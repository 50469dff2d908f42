// npipe/gateway.hpp: exposes local pipes to other machines over TLS 1.3 (npipe::remote).
// Remote clients reach them with named_pipe_client("host[:port]", "name") and
// pipe_options::remote (npipe/remote_options.hpp). The wire protocol is in docs/protocol.md,
// "Remote pipes".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "npipe/types.hpp"

namespace npipe {

struct gateway_options {
    /// Where to listen: "ADDR:PORT" or "[IPv6]:PORT"; port 0 picks a free one (see port()).
    std::string listen = "0.0.0.0:4477";
    /// The gateway's certificate chain and private key (PEM files).
    std::string cert_file;
    std::string key_file;
    /// Mutual TLS: clients must present a certificate signed by a CA in this PEM file.
    std::string client_ca_file;
    /// A shared secret clients must send (compared in constant time). Leading and trailing
    /// whitespace is not trimmed here (read_token_file does that).
    std::string token;
    /// The pipe names remote clients may open (exact names; none by default).
    std::vector<std::string> allow;
    /// Whose pipe servers the gateway forwards to besides its own user's: the server's uid
    /// (SO_PEERCRED, read before a byte is forwarded) must be the gateway's effective uid or
    /// one of these. Otherwise another local user who serves an allowed name while the real
    /// server is down would receive the remote client's data; the client is answered "pipe
    /// not available" and the owner found is logged.
    std::vector<user_id> allow_owners;
    /// A client that has not finished the TLS handshake and sent its request by then is dropped.
    std::chrono::milliseconds handshake_timeout{10'000};
    /// Limits on connections in their handshake (TLS and request, not yet authenticated), so
    /// that idle ones cannot hold every descriptor while a real client, which authenticates in
    /// a round trip or two, still gets through. With max_handshakes pending (lowered to half
    /// the descriptor limit when that is smaller), a new connection is accepted only once one
    /// is evicted: the oldest of the address with the most pending connections when it has
    /// more than max_handshakes_per_address, else the oldest of all; and only a connection
    /// pending for a second (or the handshake timeout, if shorter), so a burst of genuine
    /// clients is never cut down. When none is that old, accepting waits (the kernel's backlog
    /// holds the newcomers) until one authenticates or ages. 0: no limit.
    std::size_t max_handshakes = 256;
    std::size_t max_handshakes_per_address = 32;
    /// TCP keepalive and TCP_USER_TIMEOUT: a peer whose network vanished is dropped after
    /// about this long. 0: the kernel's defaults (hours).
    std::chrono::milliseconds dead_peer_timeout{60'000};
    /// A connection on which nothing moved either way for this long is closed. 0: never (a
    /// pipe may rightly stay quiet for days; the dead-peer timeout still applies).
    std::chrono::milliseconds idle_timeout{0};
    /// Bytes buffered per direction per connection.
    std::size_t buffer_size = 256 * 1024;
    /// Called with one line per connection event (accepted, refused and why, ended); may be
    /// empty. Called on the gateway's thread.
    std::function<void(std::string_view)> log;
};

/// Reads a token file: its content without trailing newlines and spaces. Throws pipe_error
/// when it cannot be read or is empty.
std::string read_token_file(const std::string& path);

/// The gateway: one thread (the one calling run()) serves every connection, however many.
/// For each client: TLS 1.3 handshake (with a client certificate when client_ca_file is set),
/// the request (docs/protocol.md), the token check when a token is set, the --allow check,
/// then a connection to the local pipe as an ordinary client (byte or message mode, as the
/// pipe's server is; a .NET server works) and forwarding both ways until both ends close.
class gateway {
  public:
    /// Loads the certificates and binds the listening socket. Throws pipe_error
    /// (errc::invalid_argument when neither client_ca_file nor token is set, or a file
    /// cannot be loaded; the system error when the address cannot be bound).
    explicit gateway(gateway_options options);
    ~gateway();
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    /// The TCP port listened on (useful with port 0).
    std::uint16_t port() const noexcept;

    /// Serves until stop(); returns once every connection has ended.
    void run();

    /// Thread-safe and idempotent (until destruction, which must wait for run() to return).
    /// Once it has returned no further request is forwarded: clients whose request arrives
    /// later are answered "gateway shutting down". Then, on the gateway's thread: stops
    /// accepting and closes forwarded connections; a client still in its handshake has
    /// two seconds (at most the handshake timeout) to finish it, then is dropped.
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace npipe
