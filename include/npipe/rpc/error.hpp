// npipe/rpc/error.hpp: JSON-RPC errors, as one exception type and an error category.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <system_error>

namespace npipe::rpc {

/// The JSON document type of the layer (nlohmann::json; docs/rpc.md says why).
using json = nlohmann::json;

/// Error codes: the JSON-RPC 2.0 spec's, LSP's and StreamJsonRpc's cancellation code, and the
/// local conditions this layer reports through the same category (never sent on the wire).
/// Any other int is an application's code, as the peer sent it.
enum class errc : int {
    parse_error = -32700,        ///< the peer's document is not JSON
    invalid_request = -32600,    ///< JSON, but not a request or response
    method_not_found = -32601,   ///< no handler for the method
    invalid_params = -32602,     ///< the params do not fit the handler
    internal_error = -32603,     ///< the handler failed
    request_cancelled = -32800,  ///< `$/cancelRequest` ended the request (LSP's RequestCancelled)
    server_busy = -32000,        ///< the connection's queue of requests to run is full
    timed_out = -32001,          ///< local: the call's timeout expired (a cancel was sent)
    connection_closed = -32002,  ///< local: the connection ended before the response came
    frame_error = -32003,        ///< local: the peer broke the framing or sent too much
};

/// The category of every JSON-RPC error code (its value() is the code on the wire).
const std::error_category& rpc_category() noexcept;

/// An error_code of rpc_category().
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), rpc_category()};
}

/// A JSON-RPC error: from the peer (its code, message and optional data) or local (timeouts, a
/// closed connection). Thrown by handlers, it is what the peer receives.
class rpc_error : public std::runtime_error {
  public:
    /// An error with the given code, message and data (null data is left out on the wire).
    rpc_error(int code, std::string message, json data = nullptr);
    rpc_error(errc code, std::string message, json data = nullptr)
        : rpc_error(static_cast<int>(code), std::move(message), std::move(data)) {}

    /// The error's code (errc or an application's).
    int code() const noexcept { return code_; }
    /// The code as an error_code of rpc_category(), for comparisons with errc values.
    std::error_code error_code() const noexcept { return {code_, rpc_category()}; }
    /// The message as the peer (or this layer) wrote it, without the code.
    const std::string& message() const noexcept { return message_; }
    /// The error's data member; null when absent.
    const json& data() const noexcept { return data_; }

    /// The wire form: {"code":..,"message":..[,"data":..]}.
    json to_json() const;
    /// Reads a wire error object; a malformed one becomes an internal_error describing it.
    static rpc_error from_json(const json& error);

  private:
    int code_;
    std::string message_;
    json data_;
};

}  // namespace npipe::rpc

template <>
struct std::is_error_code_enum<npipe::rpc::errc> : std::true_type {};
