#include "npipe/errors.hpp"

#include <cerrno>

namespace npipe {
namespace {

class category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "npipe"; }

    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::timed_out:
                return "timed out";
            case errc::broken_pipe:
                return "pipe is broken (the other end closed it)";
            case errc::access_denied:
                return "access denied";
            case errc::name_in_use:
                return "pipe name is in use by a live server";
            case errc::all_instances_busy:
                return "all pipe instances are busy";
            case errc::invalid_name:
                return "invalid pipe name";
            case errc::path_too_long:
                return "socket path too long (sockaddr_un holds 107 bytes)";
            case errc::not_a_socket:
                return "a file that is not a socket exists at the pipe's path";
            case errc::not_connected:
                return "pipe is not connected";
            case errc::already_connected:
                return "pipe is already connected";
            case errc::operation_aborted:
                return "operation aborted: the pipe was closed";
            case errc::wrong_direction:
                return "pipe was not opened for this direction";
            case errc::invalid_argument:
                return "invalid argument";
            case errc::not_supported:
                return "operation not supported on this pipe";
            case errc::message_too_large:
                return "message exceeds the pipe's maximum message size";
            case errc::protocol_error:
                return "protocol error: the peer uses a different transmission mode or wire format";
            case errc::name_taken_over:
                return "the pipe's socket file was removed or replaced by another server (a .NET "
                       "server without FirstPipeInstance does this): no client can reach this "
                       "server any more";
        }
        return "unknown npipe error";
    }

    // Lets callers test portable conditions: ec == std::errc::timed_out holds for errc::timed_out.
    std::error_condition default_error_condition(int value) const noexcept override {
        switch (static_cast<errc>(value)) {
            case errc::timed_out:
                return std::errc::timed_out;
            case errc::broken_pipe:
                return std::errc::broken_pipe;
            case errc::access_denied:
                return std::errc::permission_denied;
            case errc::name_in_use:
                return std::errc::address_in_use;
            case errc::all_instances_busy:
                return std::errc::device_or_resource_busy;
            case errc::invalid_name:
                return std::errc::invalid_argument;
            case errc::path_too_long:
                return std::errc::filename_too_long;
            case errc::not_a_socket:
                return std::errc::not_a_socket;
            case errc::not_connected:
                return std::errc::not_connected;
            case errc::already_connected:
                return std::errc::already_connected;
            case errc::operation_aborted:
                return std::errc::operation_canceled;
            case errc::wrong_direction:
                return std::errc::operation_not_permitted;
            case errc::invalid_argument:
                return std::errc::invalid_argument;
            case errc::not_supported:
                return std::errc::operation_not_supported;
            case errc::message_too_large:
                return std::errc::message_size;
            case errc::protocol_error:
                return std::errc::protocol_error;
            case errc::name_taken_over:
                break;  // no portable condition says "someone else has the name now"
        }
        return std::error_condition(value, *this);
    }
};

}  // namespace

const std::error_category& pipe_category() noexcept {
    static const category instance;
    return instance;
}

std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), pipe_category()};
}

namespace {
std::string describe(std::string_view pipe_name, std::string_view operation) {
    if (pipe_name.empty())
        return std::string(operation);  // anonymous pipes, processes
    std::string text = "pipe '";
    text += pipe_name;
    text += "': ";
    text += operation;
    return text;
}
}  // namespace

pipe_error::pipe_error(std::error_code code, std::string_view pipe_name, std::string_view operation)
    : std::system_error(code, describe(pipe_name, operation)), pipe_name_(pipe_name) {}

}  // namespace npipe
