#include "core/named_pipe_rules.hpp"

#include "npipe/errors.hpp"

namespace npipe::detail {

std::shared_ptr<transport> connect_local(const std::string& endpoint, const pipe_options& options,
                                         bool& message, platform::connect_status& status,
                                         std::error_code& ec) noexcept {
    message = false;
    auto t = platform::connect(endpoint, transmission_mode::byte, options, status, ec);
    if (status == platform::connect_status::wrong_type) {
        message = true;
        t = platform::connect(endpoint, transmission_mode::message, options, status, ec);
        if (status == platform::connect_status::wrong_type)
            status = platform::connect_status::failed;  // it changed type under us
    }
    if (status != platform::connect_status::connected)
        return nullptr;
    message = message || t->native_message_pipe();
    if (options.current_user_only) {
        std::error_code peer_ec;
        auto peer = t->peer(peer_ec);
        if (peer_ec || !platform::is_current_user(peer)) {
            ec = errc::access_denied;
            status = platform::connect_status::failed;
            return nullptr;
        }
    }
    return t;
}

void apply_direction(transport& connection, pipe_direction direction) noexcept {
    std::error_code ignored;
    if (direction == pipe_direction::in)
        connection.shutdown(shutdown_how::send, ignored);
    if (direction == pipe_direction::out)
        connection.shutdown(shutdown_how::receive, ignored);
}

bool admit_peer(const transport& connection, const pipe_options& options) noexcept {
    if (!options.current_user_only && !options.accept_peer)
        return true;
    std::error_code ec;
    auto peer = connection.peer(ec);
    if (ec)
        return false;
    if (options.current_user_only && !platform::is_current_user(peer))
        return false;
    if (options.accept_peer) {
        try {
            return options.accept_peer(peer);
        } catch (...) {
            return false;
        }
    }
    return true;
}

}  // namespace npipe::detail
