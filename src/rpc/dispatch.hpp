// What the synchronous and the asynchronous connection do alike with what they receive and
// send: sorting a received document, answering a request from its handler's outcome, refusing
// work when busy. Internal to npipe::rpc (src/rpc).
#pragma once
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "npipe/rpc/error.hpp"
#include "npipe/rpc/framing.hpp"
#include "npipe/rpc/message.hpp"

namespace npipe::rpc::detail {

inline constexpr std::string_view cancel_method = "$/cancelRequest";

/// The key of a request id in a table of running requests (ids may be numbers or strings).
std::string id_key(const json& id);

/// A received document, sorted.
struct received {
    std::optional<json> answer;          ///< to send at once (a parse error, answered id null)
    std::vector<message> responses;      ///< answers to our calls
    std::vector<std::string> cancelled;  ///< id_key()s of the peer's `$/cancelRequest`s
    std::vector<message> work;           ///< requests, notifications and invalid messages to answer
    bool batch = false;                  ///< the document was an array: answer with one array
};
received sort_received(std::string_view text);

/// Does what a received document asks at once of `c` (a connection's impl, with send(json),
/// complete(message) and cancel_incoming(id key)): the parse error answer, the responses to our
/// calls, the cancellations. True when `r.work` remains for the handlers.
template <class Connection>
bool handle_at_once(received& r, Connection& c) {
    if (r.answer)
        c.send(*r.answer);
    for (auto& m : r.responses)
        c.complete(m);
    for (auto& key : r.cancelled)
        c.cancel_incoming(key);
    return !r.work.empty();
}

/// The id of our call that `m` (a response) answers; std::nullopt for an id not ours.
std::optional<std::int64_t> call_id_of(const message& m);

/// The answer to an invalid message.
json invalid_answer(const message& m);
/// Throws rpc_error(errc::method_not_found) naming `method`.
[[noreturn]] void throw_method_not_found(const std::string& method);
/// The answer to request `id` whose handler threw `e`: an rpc_error as it is, any other
/// exception errc::internal_error with its what(), or errc::request_cancelled when the
/// request was cancelled (an aborted wait inside a cancelled handler is its cancellation).
json error_answer(const json& id, std::exception_ptr e, bool cancelled);
/// The errc::server_busy answers to `work`; std::nullopt when it holds only notifications.
std::optional<json> busy_answer(const std::vector<message>& work, bool batch);
/// One answer document out of `answers` (an array): std::nullopt when empty, the array for a
/// batch, else its one element.
std::optional<json> join_answers(json answers, bool batch);

/// `document` serialized and framed as `f`.
std::string frame_document(framing f, const json& document);
/// The error of a call that the connection's end failed: errc::connection_closed naming the
/// pipe and why.
rpc_error closed_error(const std::string& pipe_name, const std::string& why);
/// The error of a call given up locally: errc::request_cancelled, or errc::timed_out after
/// `timeout`.
rpc_error given_up_error(bool cancelled, std::chrono::milliseconds timeout);

/// Why a connection ends, and the text its closed_error() gives.
struct ending {
    std::error_code why;
    std::string text;
};
/// The end of reading: `ec` the read's error, or empty at the end of the stream, with
/// `buffered` bytes of an unfinished document (a frame error then).
ending reading_ended(std::error_code ec, std::size_t buffered);
/// The end after a frame error of `decoder`.
ending framing_broken(framing f, const frame_decoder& decoder);

}  // namespace npipe::rpc::detail
