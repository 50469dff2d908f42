// The JSON entry point: received text to checked messages, and the documents we send.
#include "npipe/rpc/message.hpp"

namespace npipe::rpc {
namespace {

// The nesting depth of the text, counted outside strings, stopping once past the limit: the
// parser itself does not recurse, but a handler's walk of the value (or its serialization)
// would, so a document too deep for them is refused before it is built.
bool nesting_within_limit(std::string_view text) {
    std::size_t depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_nesting_depth)
                return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return true;
}

message invalid(const json& id, std::string why) {
    message m;
    m.type = message::kind::invalid;
    m.id = (id.is_number_integer() || id.is_string()) ? id : json();
    m.error = rpc_error(errc::invalid_request, "Invalid Request: " + why).to_json();
    return m;
}

message classify_one(const json& d) {
    if (!d.is_object())
        return invalid(nullptr, "not an object");
    json id;
    auto id_it = d.find("id");
    if (id_it != d.end()) {
        id = *id_it;
        if (!id.is_null() && !id.is_string() && !id.is_number())
            return invalid(nullptr, "id must be a string, a number or null");
    }
    auto version = d.find("jsonrpc");
    if (version == d.end() || *version != "2.0")
        return invalid(id, "\"jsonrpc\" must be \"2.0\"");
    auto method = d.find("method");
    if (method != d.end()) {
        if (!method->is_string())
            return invalid(id, "method must be a string");
        message m;
        m.type = id_it == d.end() ? message::kind::notification : message::kind::request;
        m.id = id;
        m.method = method->get<std::string>();
        auto params = d.find("params");
        if (params != d.end()) {
            if (!params->is_array() && !params->is_object())
                return invalid(id, "params must be an array or an object");
            m.params = *params;
        }
        return m;
    }
    auto result = d.find("result");
    auto error = d.find("error");
    if ((result == d.end()) == (error == d.end()) || id_it == d.end())
        return invalid(id, "neither a request nor a response");
    message m;
    m.type = message::kind::response;
    m.id = id;
    if (result != d.end())
        m.result = *result;
    else
        m.error = error->is_null() ? json::object() : *error;
    return m;
}

}  // namespace

std::optional<json> parse_document(std::string_view text, std::error_code& ec, std::string* why) {
    ec.clear();
    if (!nesting_within_limit(text)) {
        ec = errc::parse_error;
        if (why)
            *why = "nested deeper than " + std::to_string(max_nesting_depth);
        return std::nullopt;
    }
    json d = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (d.is_discarded()) {
        ec = errc::parse_error;
        if (why)
            *why = "not valid JSON";
        return std::nullopt;
    }
    return d;
}

std::vector<message> classify(const json& document) {
    std::vector<message> out;
    if (document.is_array()) {
        if (document.empty()) {
            out.push_back(invalid(nullptr, "empty batch"));
            return out;
        }
        out.reserve(document.size());
        for (const auto& element : document)
            out.push_back(classify_one(element));
    } else {
        out.push_back(classify_one(document));
    }
    return out;
}

json make_request(const json& id, std::string_view method, const json& params) {
    json r = {{"jsonrpc", "2.0"}};
    if (!id.is_null())
        r["id"] = id;
    r["method"] = method;
    if (!params.is_null())
        r["params"] = params;
    return r;
}

json make_result(const json& id, json result) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json make_error(const json& id, const rpc_error& error) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"error", error.to_json()}};
}

std::string serialize(const json& document) {
    return document.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace npipe::rpc
