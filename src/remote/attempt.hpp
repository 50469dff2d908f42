// One asynchronous attempt to open a pipe through a gateway: TCP connect, TLS 1.3 handshake,
// the request and the answer, all on the caller's executor; on success a pump (pump.hpp) on the
// same executor forwards between the TLS connection and one end of a local socket pair, whose
// other end is the pipe. The synchronous client runs it on its relay's io_context, the
// asynchronous one (npipe::asio) on the pipe's executor: no thread of its own either way.
#pragma once

#include <asio.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/remote_options.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::detail::remote {

struct attempt_result {
    std::error_code ec;
    std::string why;       ///< on failure: a sentence for the error message
    unique_fd fd;          ///< on success: the pipe's end of the local socket pair
    bool message = false;  ///< a message-mode pipe (the pair is SOCK_SEQPACKET)
    /// The gateway answered "unknown pipe" or "pipe busy": worth asking again later.
    bool retry = false;
};

class attempt {
  public:
    virtual ~attempt() = default;
    /// Abandons the attempt (done then gets operation_aborted). Call on the executor.
    virtual void cancel() noexcept = 0;
};

/// Starts an attempt to open `name` through the gateway at `server` ("host[:port]"), finished
/// by `deadline`; a deadline already passed (connect with timeout 0) still allows one whole
/// exchange, bounded by the dead-peer timeout. `done` runs once, on `ex`, unless the execution
/// context is destroyed first. After success the forwarding goes on by itself; `on_end` gets
/// the error that ended it (none after a clean end). The attempt keeps itself alive.
std::shared_ptr<attempt> start_attempt(
    const ::asio::any_io_executor& ex, std::string_view server, std::string_view name,
    const remote_options& options, std::optional<std::chrono::steady_clock::time_point> deadline,
    std::function<void(std::error_code)> on_end, std::function<void(attempt_result)> done);

}  // namespace npipe::detail::remote
