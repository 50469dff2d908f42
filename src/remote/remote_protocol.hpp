// The remote protocol's request and answer (docs/protocol.md, "Remote pipes"): what a client
// sends a gateway right after the TLS handshake, and what the gateway answers before the pipe's
// own bytes flow. The parsers read bytes from the network, so they trust nothing: every length
// is checked against a fixed limit before it is used. fuzz/remote_request_fuzz.cpp fuzzes them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace npipe::detail::remote {

inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::array<std::byte, 4> request_magic = {std::byte{'N'}, std::byte{'P'},
                                                           std::byte{'R'}, std::byte{'Q'}};
inline constexpr std::array<std::byte, 4> answer_magic = {std::byte{'N'}, std::byte{'P'},
                                                          std::byte{'A'}, std::byte{'N'}};
inline constexpr std::size_t request_header_size = 10;  ///< magic, version, flags, 2 lengths
inline constexpr std::size_t answer_size = 8;
inline constexpr std::size_t max_pipe_name = 255;
inline constexpr std::size_t max_token = 1024;
/// The gateway's TCP port when a server name gives none.
inline constexpr std::uint16_t default_port = 4477;

/// The gateway's answer. Values are on the wire: never renumber.
enum class status : std::uint8_t {
    ok = 0,
    unknown_pipe = 1,         ///< no server listens under that name
    not_allowed = 2,          ///< the name is not in the gateway's --allow list
    bad_token = 3,            ///< a token is required and the one sent does not match
    pipe_busy = 4,            ///< the local server refused or could not take the connection
    shutting_down = 5,        ///< the gateway is stopping
    unsupported_version = 6,  ///< the request's version is not one the gateway speaks
    bad_request = 7,          ///< the request is malformed (bad magic, length, name)
    gateway_error = 8,        ///< anything else on the gateway's side
    not_available = 9,        ///< the pipe's server runs as a user the gateway does not trust
};

/// A short English description of a status, for error messages.
const char* describe(status s) noexcept;

struct request {
    std::uint8_t version = protocol_version;
    std::string pipe_name;
    std::string token;
};

struct answer {
    std::uint8_t version = protocol_version;
    status code = status::ok;
    bool message_mode = false;  ///< ok only: the pipe's transmission mode
};

/// The outcome of feeding a parser the bytes received so far.
enum class parse_result { need_more, done, invalid };

/// Parses a request from the start of `input` (all bytes received so far). done: `out` is
/// filled and `consumed` tells where the pipe's own bytes start. invalid: `why` says what is
/// wrong (unsupported_version or bad_request). Never reads past `input` nor allocates beyond
/// the fixed limits.
parse_result parse_request(std::span<const std::byte> input, request& out, std::size_t& consumed,
                           status& why) noexcept;

/// Parses an answer from the start of `input`, as parse_request.
parse_result parse_answer(std::span<const std::byte> input, answer& out,
                          std::size_t& consumed) noexcept;

/// The wire form of a request; name and token must be within their limits.
std::vector<std::byte> encode_request(const request& r);
std::array<std::byte, answer_size> encode_answer(const answer& a) noexcept;

/// Whether `name` may be asked for: 1..max_pipe_name bytes, no NUL and no '/' (a gateway
/// exposes names, never socket paths).
bool valid_pipe_name(std::string_view name) noexcept;

}  // namespace npipe::detail::remote
