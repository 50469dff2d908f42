#include "remote/remote_protocol.hpp"

#include <algorithm>
#include <cstring>

namespace npipe::detail::remote {

const char* describe(status s) noexcept {
    switch (s) {
        case status::ok:
            return "ok";
        case status::unknown_pipe:
            return "no such pipe on the gateway's machine";
        case status::not_allowed:
            return "the gateway does not expose this pipe (not in --allow)";
        case status::bad_token:
            return "the gateway refused the token";
        case status::pipe_busy:
            return "the pipe's server is busy";
        case status::shutting_down:
            return "the gateway is shutting down";
        case status::unsupported_version:
            return "the gateway speaks another version of the remote protocol";
        case status::bad_request:
            return "the gateway could not parse the request";
        case status::gateway_error:
            return "the gateway failed to reach the pipe";
        case status::not_available:
            return "pipe not available (its server is not one the gateway forwards to)";
    }
    return "unknown answer from the gateway";
}

namespace {

std::uint16_t le16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>(std::uint16_t(p[0]) | std::uint16_t(p[1]) << 8);
}

bool starts_with_magic(std::span<const std::byte> input,
                       const std::array<std::byte, 4>& magic) noexcept {
    std::size_t n = std::min(input.size(), magic.size());
    return std::equal(input.begin(), input.begin() + static_cast<long>(n), magic.begin());
}

}  // namespace

bool valid_pipe_name(std::string_view name) noexcept {
    return !name.empty() && name.size() <= max_pipe_name &&
           name.find('\0') == std::string_view::npos && name.find('/') == std::string_view::npos;
}

parse_result parse_request(std::span<const std::byte> input, request& out, std::size_t& consumed,
                           status& why) noexcept {
    consumed = 0;
    why = status::bad_request;
    // Reject a wrong prefix as soon as it shows, so a plaintext client (an HTTP request, say)
    // is answered at once instead of waiting for bytes that never come.
    if (!starts_with_magic(input, request_magic))
        return parse_result::invalid;
    if (input.size() < 5)
        return parse_result::need_more;
    if (std::uint8_t(input[4]) != protocol_version) {
        why = status::unsupported_version;
        return parse_result::invalid;
    }
    if (input.size() < request_header_size)
        return parse_result::need_more;
    if (input[5] != std::byte{0})  // flags: none defined in version 1
        return parse_result::invalid;
    std::size_t name_size = le16(input.data() + 6);
    std::size_t token_size = le16(input.data() + 8);
    if (name_size == 0 || name_size > max_pipe_name || token_size > max_token)
        return parse_result::invalid;
    std::size_t total = request_header_size + name_size + token_size;
    if (input.size() < total)
        return parse_result::need_more;
    try {
        std::string name(reinterpret_cast<const char*>(input.data()) + request_header_size,
                         name_size);
        if (!valid_pipe_name(name))
            return parse_result::invalid;
        out.version = protocol_version;
        out.pipe_name = std::move(name);
        out.token.assign(
            reinterpret_cast<const char*>(input.data()) + request_header_size + name_size,
            token_size);
    } catch (...) {
        why = status::gateway_error;
        return parse_result::invalid;
    }
    consumed = total;
    return parse_result::done;
}

parse_result parse_answer(std::span<const std::byte> input, answer& out,
                          std::size_t& consumed) noexcept {
    consumed = 0;
    if (!starts_with_magic(input, answer_magic))
        return parse_result::invalid;
    if (input.size() < answer_size)
        return parse_result::need_more;
    auto code = std::uint8_t(input[5]);
    auto mode = std::uint8_t(input[6]);
    if (code > std::uint8_t(status::not_available) || mode > 1 || input[7] != std::byte{0})
        return parse_result::invalid;
    out.version = std::uint8_t(input[4]);
    out.code = static_cast<status>(code);
    out.message_mode = mode == 1;
    // A gateway that does not speak our version says so in a version-1 shaped answer; any
    // other answer from another version cannot be understood.
    if (out.version != protocol_version && out.code != status::unsupported_version)
        return parse_result::invalid;
    consumed = answer_size;
    return parse_result::done;
}

std::vector<std::byte> encode_request(const request& r) {
    std::vector<std::byte> out(request_magic.begin(), request_magic.end());
    out.push_back(std::byte{r.version});
    out.push_back(std::byte{0});
    auto put16 = [&](std::size_t v) {
        out.push_back(std::byte(v & 0xff));
        out.push_back(std::byte((v >> 8) & 0xff));
    };
    put16(r.pipe_name.size());
    put16(r.token.size());
    auto bytes = [](const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); };
    auto name = bytes(r.pipe_name);
    auto token = bytes(r.token);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), token.begin(), token.end());
    return out;
}

std::array<std::byte, answer_size> encode_answer(const answer& a) noexcept {
    return {answer_magic[0],
            answer_magic[1],
            answer_magic[2],
            answer_magic[3],
            std::byte{a.version},
            std::byte{std::uint8_t(a.code)},
            std::byte{std::uint8_t(a.message_mode && a.code == status::ok ? 1 : 0)},
            std::byte{0}};
}

}  // namespace npipe::detail::remote
