// JSON-RPC errors: the category and the exception's wire form.
#include "npipe/rpc/error.hpp"

#include "npipe/rpc/handler.hpp"

namespace npipe::rpc {
namespace {

class category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "json-rpc"; }
    std::string message(int code) const override {
        switch (static_cast<errc>(code)) {
            case errc::parse_error:
                return "parse error";
            case errc::invalid_request:
                return "invalid request";
            case errc::method_not_found:
                return "method not found";
            case errc::invalid_params:
                return "invalid params";
            case errc::internal_error:
                return "internal error";
            case errc::request_cancelled:
                return "request cancelled";
            case errc::server_busy:
                return "server busy";
            case errc::timed_out:
                return "call timed out";
            case errc::connection_closed:
                return "connection closed";
            case errc::frame_error:
                return "framing error";
        }
        return "json-rpc error " + std::to_string(code);
    }
};

std::string what_of(int code, const std::string& message) {
    return "json-rpc error " + std::to_string(code) + ": " + message;
}

}  // namespace

const std::error_category& rpc_category() noexcept {
    static const category c;
    return c;
}

rpc_error::rpc_error(int code, std::string message, json data)
    : std::runtime_error(what_of(code, message)),
      code_(code),
      message_(std::move(message)),
      data_(std::move(data)) {}

json rpc_error::to_json() const {
    json e = {{"code", code_}, {"message", message_}};
    if (!data_.is_null())
        e["data"] = data_;
    return e;
}

rpc_error rpc_error::from_json(const json& error) {
    if (error.is_object()) {
        auto code = error.find("code");
        auto message = error.find("message");
        if (code != error.end() && code->is_number_integer() && message != error.end() &&
            message->is_string()) {
            auto data = error.find("data");
            return rpc_error(code->get<int>(), message->get<std::string>(),
                             data != error.end() ? *data : json());
        }
    }
    return rpc_error(errc::internal_error, "malformed error object from the peer", error);
}

namespace detail {
void throw_invalid_params(const std::string& why) {
    throw rpc_error(errc::invalid_params, "Invalid params: " + why);
}
}  // namespace detail

}  // namespace npipe::rpc
