// npipe/remote_options.hpp: TLS settings for a client of a pipe on another machine, reached
// through `npipe gateway` (npipe::remote; docs/protocol.md, "Remote pipes").
//
//   auto tls = std::make_shared<npipe::remote_options>();
//   tls->ca_file = "gateway-ca.pem";
//   tls->token = npipe::read_token_file("token");   // npipe/gateway.hpp
//   npipe::pipe_options options;
//   options.remote = tls;
//   npipe::named_pipe_client pipe("server.example:4477", "name", npipe::pipe_direction::in_out,
//                                 options);
//   pipe.connect(std::chrono::seconds(10));
#pragma once

#include <chrono>
#include <string>

namespace npipe {

struct remote_options {
    /// Constructing one also registers npipe::remote's connector (enable_remote_pipes()).
    remote_options();

    /// The CA (PEM) that signed the gateway's certificate; empty: the system's trust store.
    /// The certificate must name the host as given (DNS name or IP address).
    std::string ca_file;
    /// A client certificate and its key (PEM) for gateways that require mutual TLS.
    std::string cert_file;
    std::string key_file;
    /// The gateway's shared secret, when it requires one.
    std::string token;
    /// TCP keepalive and TCP_USER_TIMEOUT: when the network to the gateway vanishes, reads fail
    /// with errc::timed_out and writes with errc::broken_pipe after about this long.
    /// 0: the kernel's defaults (hours).
    std::chrono::milliseconds dead_peer_timeout{30'000};
};

/// Makes named_pipe_client accept another machine's name ("host", "host:port", "[v6]:port"),
/// connecting through its `npipe gateway` over TLS 1.3. Call once, before such a client is
/// created; idempotent and thread-safe. Needed only when no remote_options is ever constructed.
void enable_remote_pipes() noexcept;

}  // namespace npipe
