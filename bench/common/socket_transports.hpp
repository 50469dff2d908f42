// The socket baselines (Unix domain sockets, TCP on loopback), shared by bench_raw and by `npipe
// bench --versus-raw` (which alternates npipe with raw uds-stream).
#pragma once

#include <memory>
#include <string>

#include "harness.hpp"

namespace npipe::bench {

/// Unix domain sockets, SOCK_STREAM or (`seqpacket`) SOCK_SEQPACKET, bound in $TMPDIR (or
/// /tmp) under a name with the system's name and the server's pid: one read() or send() per
/// call.
std::unique_ptr<transport> make_unix_socket_transport(bool seqpacket);

/// TCP over 127.0.0.1 (never another address), TCP_NODELAY on both ends.
std::unique_ptr<transport> make_tcp_transport();

}  // namespace npipe::bench
