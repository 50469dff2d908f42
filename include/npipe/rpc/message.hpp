// npipe/rpc/message.hpp: the JSON entry point: a received document, checked and sorted into
// requests, notifications and responses, and the documents this layer sends.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>
#include "npipe/rpc/error.hpp"

namespace npipe::rpc {

/// The deepest nesting of arrays and objects a received document may have (deeper is a parse
/// error: it bounds the stack any later walk of the document uses).
inline constexpr std::size_t max_nesting_depth = 128;

/// Parses a received document: std::nullopt with ec = errc::parse_error (invalid JSON or
/// UTF-8, too deeply nested), ec set to its reason in `why` when given.
std::optional<json> parse_document(std::string_view text, std::error_code& ec,
                                   std::string* why = nullptr);

/// One JSON-RPC message out of a received document.
struct message {
    enum class kind { request, notification, response, invalid };
    kind type = kind::invalid;
    json id;             ///< request/response: the id as sent (number or string; null if absent)
    std::string method;  ///< request/notification
    json params;         ///< request/notification: array, object or null when absent
    json result;         ///< response: the result (when error is null)
    json error;          ///< response: the error object; invalid: the rpc error to answer with
};

/// Sorts a parsed document into messages: one for an object, one per element for a batch (an
/// array); an empty batch or a non-object element is one invalid message (invalid_request).
std::vector<message> classify(const json& document);

/// A request or notification document ({"jsonrpc":"2.0",...}); no "id" when id is null.
json make_request(const json& id, std::string_view method, const json& params);
/// A success response document.
json make_result(const json& id, json result);
/// An error response document.
json make_error(const json& id, const rpc_error& error);

/// Serializes a document to compact UTF-8 JSON (no line feed; invalid UTF-8 in strings is
/// replaced by U+FFFD rather than throwing).
std::string serialize(const json& document);

}  // namespace npipe::rpc
