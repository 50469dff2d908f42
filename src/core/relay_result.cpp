// The portable half of npipe::relay: how it ended, and the words for it.
#include <string>

#include "core/relay_ending.hpp"
#include "npipe/relay.hpp"

namespace npipe {

namespace detail {

bool relay_ending::record(relay_end why, std::error_code ec, std::string_view what) noexcept {
    if (end)
        return false;
    end = why;
    error = ec;
    operation = what;
    return true;
}

relay_result relay_ending::result(bool input_ended, std::uint64_t sent,
                                  std::uint64_t received) const {
    relay_result r;
    r.end = end.value_or(relay_end::completed);
    r.error = error;
    r.operation = operation;
    r.input_ended = input_ended;
    r.bytes_sent = sent;
    r.bytes_received = received;
    return r;
}

}  // namespace detail

std::string relay_result::describe(std::string_view pipe_name, const relay_options& options) const {
    std::string head = "pipe '" + std::string(pipe_name) + "': ";
    switch (end) {
        case relay_end::completed:
            return {};
        case relay_end::peer_closed:
            return head +
                   (input_ended ? "the peer closed the pipe before it read all we sent"
                                : "the peer closed the pipe before our input ended") +
                   " (" + std::to_string(bytes_sent) + " bytes sent, " +
                   std::to_string(bytes_received) + " received)";
        case relay_end::output_closed:
            return head + "our output was closed before the pipe's data ended (" +
                   std::to_string(bytes_received) + " bytes written)";
        case relay_end::idle_timeout:
            return head + "nothing moved for " + std::to_string(options.idle_timeout.count()) +
                   " ms (idle timeout); closed";
        case relay_end::write_timeout:
            return head + "the peer read nothing for " +
                   std::to_string(options.write_timeout.count()) + " ms (write timeout); closed";
        case relay_end::cancelled:
            return head + "the relay was cancelled";
        case relay_end::failed:
            return head + std::string(operation) + ": " + error.message();
    }
    return head + "the relay ended";
}

}  // namespace npipe
