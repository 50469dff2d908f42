// OpenSSL plumbing shared by the gateway and the remote client: owning pointers, TLS 1.3-only
// contexts, error text, and the TCP settings that notice a dead network.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

namespace npipe::detail::remote {

struct ssl_ctx_free {
    void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};
struct ssl_free {
    void operator()(SSL* p) const noexcept { SSL_free(p); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

/// A context that speaks TLS 1.3 and nothing older, issues no session tickets (nothing is
/// written behind the application's back, which keeps half-close simple), and lets SSL_write
/// return partial writes from a buffer that may move between retries.
ssl_ctx_ptr make_tls13_context(bool server, std::string& why);

/// Makes `ssl` read and write the socket `fd` (which it does not own) through a BIO that sends
/// with MSG_NOSIGNAL: OpenSSL's socket BIO uses write(2), which raises SIGPIPE on a reset
/// connection. False when out of memory.
bool attach_socket(SSL* ssl, int fd) noexcept;

/// The reasons OpenSSL queued for the last failure, joined, and clears the queue ("" if none).
std::string take_ssl_errors();

/// Turns on TCP keepalive and TCP_USER_TIMEOUT so that a peer that vanished (cable cut, host
/// gone) is reported as ETIMEDOUT within about `dead_peer_timeout`, whether data is in flight
/// or the connection is idle. Also sets TCP_NODELAY: message-mode frames must not wait.
void set_dead_peer_timeout(int fd, std::chrono::milliseconds dead_peer_timeout) noexcept;

}  // namespace npipe::detail::remote
