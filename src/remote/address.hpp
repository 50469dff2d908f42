// "host", "host:port", "[v6]:port" and "//host/pipe/name" parsing for remote pipes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace npipe::detail::remote {

struct host_port {
    std::string host;
    std::uint16_t port = 0;
};

/// Splits "host", "host:port", "[v6addr]" or "[v6addr]:port"; nullopt when malformed.
inline std::optional<host_port> parse_host_port(std::string_view s, std::uint16_t default_port) {
    host_port out{std::string(), default_port};
    std::string_view rest;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        out.host = std::string(s.substr(1, close - 1));
        rest = s.substr(close + 1);
        if (!rest.empty() && rest.front() != ':')
            return std::nullopt;
    } else {
        auto colon = s.find(':');
        if (colon != std::string_view::npos && s.find(':', colon + 1) != std::string_view::npos) {
            out.host = std::string(s);  // a bare IPv6 address
            return out.host.empty() ? std::nullopt : std::optional(out);
        }
        out.host = std::string(s.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view() : s.substr(colon);
    }
    if (out.host.empty())
        return std::nullopt;
    if (!rest.empty()) {
        rest.remove_prefix(1);
        if (rest.empty() || rest.size() > 5)
            return std::nullopt;
        unsigned port = 0;
        for (char c : rest) {
            if (c < '0' || c > '9')
                return std::nullopt;
            port = port * 10 + unsigned(c - '0');
        }
        if (port > 65535)
            return std::nullopt;
        out.port = static_cast<std::uint16_t>(port);
    }
    return out;
}

}  // namespace npipe::detail::remote
