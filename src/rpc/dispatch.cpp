// What both connections do alike with received documents and answers (dispatch.hpp).
#include "dispatch.hpp"

#include <system_error>

namespace npipe::rpc::detail {

std::string id_key(const json& id) {
    return id.dump();
}

received sort_received(std::string_view text) {
    received r;
    std::error_code ec;
    std::string why;
    auto document = parse_document(text, ec, &why);
    if (!document) {
        r.answer = make_error(nullptr, rpc_error(errc::parse_error, "Parse error: " + why));
        return r;
    }
    r.batch = document->is_array();
    for (auto& m : classify(*document)) {
        if (m.type == message::kind::response) {
            r.responses.push_back(std::move(m));
        } else if (m.type == message::kind::notification && m.method == cancel_method) {
            if (m.params.is_object() && m.params.contains("id"))
                r.cancelled.push_back(id_key(m.params["id"]));
        } else {
            r.work.push_back(std::move(m));
        }
    }
    return r;
}

std::optional<std::int64_t> call_id_of(const message& m) {
    if (!m.id.is_number_integer())
        return std::nullopt;  // not an id of ours (or the peer's parse error)
    return m.id.get<std::int64_t>();
}

json invalid_answer(const message& m) {
    return {{"jsonrpc", "2.0"}, {"id", m.id}, {"error", m.error}};
}

void throw_method_not_found(const std::string& method) {
    throw rpc_error(errc::method_not_found, "Method not found: " + method);
}

json error_answer(const json& id, std::exception_ptr e, bool cancelled) {
    try {
        std::rethrow_exception(e);
    } catch (const rpc_error& error) {
        return make_error(id, error);
    } catch (const std::exception& error) {
        if (cancelled)
            return make_error(id, rpc_error(errc::request_cancelled, "Request cancelled"));
        return make_error(id, rpc_error(errc::internal_error, error.what()));
    } catch (...) {
        return make_error(id, rpc_error(errc::internal_error, "unknown exception"));
    }
}

std::optional<json> busy_answer(const std::vector<message>& work, bool batch) {
    json answers = json::array();
    rpc_error busy(errc::server_busy, "Server busy: too many requests queued");
    for (const auto& m : work)
        if (m.type != message::kind::notification)
            answers.push_back(make_error(m.id, busy));
    return join_answers(std::move(answers), batch);
}

std::optional<json> join_answers(json answers, bool batch) {
    if (answers.empty())
        return std::nullopt;
    if (batch)
        return answers;
    return std::move(answers.front());
}

std::string frame_document(framing f, const json& document) {
    std::string frame;
    encode_frame(f, serialize(document), frame);
    return frame;
}

rpc_error closed_error(const std::string& pipe_name, const std::string& why) {
    return rpc_error(errc::connection_closed,
                     "connection on pipe '" + pipe_name + "' closed: " + why);
}

rpc_error given_up_error(bool cancelled, std::chrono::milliseconds timeout) {
    if (cancelled)
        return rpc_error(errc::request_cancelled, "Request cancelled");
    return rpc_error(errc::timed_out,
                     "call timed out after " + std::to_string(timeout.count()) + " ms");
}

ending reading_ended(std::error_code ec, std::size_t buffered) {
    if (ec)
        return {ec, "read failed: " + ec.message()};
    if (buffered > 0)
        return {errc::frame_error, "the peer closed inside a message"};
    return {errc::connection_closed, "the peer closed the connection"};
}

ending framing_broken(framing f, const frame_decoder& decoder) {
    return {errc::frame_error, "the peer broke the " + std::string(to_string(f)) +
                                   " framing: " + decoder.error_reason()};
}

}  // namespace npipe::rpc::detail
