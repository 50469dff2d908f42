// npipe/rpc/connection.hpp: one JSON-RPC 2.0 connection over a connected pipe: both ends call
// each other, from any number of threads, with responses matched by id in any order.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>
#include "npipe/pipe_stream.hpp"
#include "npipe/rpc/error.hpp"
#include "npipe/rpc/framing.hpp"
#include "npipe/rpc/handler.hpp"

namespace npipe::rpc {

/// How a connection frames, bounds and runs what it receives.
struct connection_options {
    /// The framing both ends use (header: StreamJsonRpc's default and LSP's). framing::message
    /// needs a message pipe in message read mode.
    rpc::framing framing = framing::header;
    /// The largest document accepted from the peer; a larger one is a frame error, which closes
    /// the connection.
    std::size_t max_message_size = default_max_message_size;
    /// Threads that run the handlers of received requests (so a handler may call the peer back
    /// and wait for the answer while the connection keeps reading).
    unsigned handler_threads = 4;
    /// Received requests waiting for a handler thread; one more is answered with
    /// errc::server_busy at once.
    std::size_t max_queued_requests = 1024;
};

/// How one outgoing call waits.
struct call_options {
    /// Give up after this long (zero: wait as long as the connection lives): the peer is sent
    /// `$/cancelRequest` and the call fails with errc::timed_out.
    std::chrono::milliseconds timeout{0};
    /// Requesting stop cancels the call: the peer is sent `$/cancelRequest` and the call fails
    /// with errc::request_cancelled.
    std::stop_token stop{};
};

/// A JSON-RPC 2.0 connection over a connected pipe_stream, which must outlive it. Register the
/// methods, then start(): a reader thread reads and dispatches until the peer closes, a frame
/// error, or close(). Calls may be made from any threads at once, including from handlers.
/// The destructor closes the pipe and joins the connection's threads: destroy it from a
/// thread that is not one of its handlers.
class connection : public method_registry<raw_handler, detail::make_raw_handler> {
  public:
    explicit connection(pipe_stream& stream, connection_options options = {});
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // add_method(), set_fallback(): method_registry's (handler.hpp).

    /// Starts reading and dispatching (once; handlers may be added later too).
    void start();

    /// Calls `method` with `params` (an array, an object, or null for none) and returns the
    /// result. Throws rpc_error: the peer's error (code, message, data), errc::timed_out,
    /// errc::request_cancelled, or errc::connection_closed naming the cause.
    json call(std::string_view method, json params = nullptr, const call_options& options = {});
    /// As call(), failures in `ec` (an rpc_category() code; the peer's message and data are in
    /// `error` when given), returning null.
    json call(std::string_view method, json params, const call_options& options,
              std::error_code& ec, rpc_error* error = nullptr);
    /// As call(), converting the result to T (a result that does not convert throws
    /// rpc_error(errc::internal_error) naming the mismatch).
    template <class T>
    T call_as(std::string_view method, json params = nullptr, const call_options& options = {}) {
        json result = call(method, std::move(params), options);
        try {
            return result.get<T>();
        } catch (const json::exception& e) {
            throw rpc_error(errc::internal_error,
                            "result of " + std::string(method) + " does not convert: " + e.what());
        }
    }

    /// Sends a notification (no answer). Throws rpc_error(errc::connection_closed) when the
    /// pipe is broken.
    void notify(std::string_view method, json params = nullptr);
    void notify(std::string_view method, json params, std::error_code& ec) noexcept;

    /// One call of a batch.
    struct batch_call {
        std::string method;
        json params;
        bool notification = false;  ///< sent without an id: no result comes back
    };
    /// The outcome of one batch call: its result, or its error (code != 0).
    struct batch_result {
        json result;
        std::error_code ec;
        json error;  ///< the error object the peer sent, when ec is set by the peer
    };
    /// Sends `calls` as one batch (one JSON array) and waits for every answer; results in the
    /// order of `calls` (a notification's slot stays empty). Throws as call() for a timeout,
    /// a cancellation or a closed connection.
    std::vector<batch_result> call_batch(const std::vector<batch_call>& calls,
                                         const call_options& options = {});

    /// Ends the connection: closes the pipe (the peer sees end of stream), fails the calls in
    /// progress with errc::connection_closed and asks running handlers to stop. Idempotent;
    /// callable from any thread, handlers included.
    void close() noexcept;
    /// Blocks until the connection has ended (peer closed, frame error, close()).
    void wait();
    /// Whether the connection is still up.
    bool is_open() const noexcept;
    /// Why the connection ended (empty while it is up): the pipe's error, errc::frame_error,
    /// or errc::connection_closed for a clean end of stream or close().
    std::error_code close_reason() const;

    struct impl;  ///< opaque

  private:
    std::shared_ptr<impl> impl_;
};

}  // namespace npipe::rpc
