// libFuzzer target for the remote protocol's request and answer parsers
// (src/remote/remote_protocol.hpp): bytes from the network must never crash them, make them read
// past their input, or be accepted unless they are exactly what the encoder writes.
//
// Input: byte 0 picks what is checked (bit 0: the answer parser instead of the request parser),
// the rest is the wire.
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "fuzz_check.hpp"
#include "remote/remote_protocol.hpp"

namespace {

using namespace npipe::detail::remote;

// A copy of exactly `n` bytes, so ASan catches a read past the input.
std::unique_ptr<std::byte[]> exact_copy(std::span<const std::byte> wire, std::size_t n) {
    auto copy = std::make_unique<std::byte[]>(n ? n : 1);
    if (n)
        std::memcpy(copy.get(), wire.data(), n);
    return copy;
}

void check_request(std::span<const std::byte> wire) {
    auto copy = exact_copy(wire, wire.size());
    request r;
    std::size_t consumed = 0;
    status why = status::ok;
    auto result = parse_request(std::span(copy.get(), wire.size()), r, consumed, why);
    if (result != parse_result::done) {
        FUZZ_CHECK(consumed == 0);
        if (result == parse_result::invalid)
            FUZZ_CHECK(why == status::bad_request || why == status::unsupported_version);
        return;
    }
    FUZZ_CHECK(consumed <= wire.size());
    FUZZ_CHECK(valid_pipe_name(r.pipe_name));
    FUZZ_CHECK(r.token.size() <= max_token);
    // Accepted bytes are exactly what the encoder writes for what was parsed.
    auto encoded = encode_request(r);
    FUZZ_CHECK(encoded.size() == consumed);
    FUZZ_CHECK(std::memcmp(encoded.data(), wire.data(), consumed) == 0);
    // Every shorter prefix asks for more: a request is never accepted or refused early for a
    // well-formed stream that is still arriving.
    for (std::size_t n = 0; n < consumed; n += 1 + n / 7) {
        auto prefix = exact_copy(wire, n);
        request ignored;
        std::size_t used = 0;
        FUZZ_CHECK(parse_request(std::span(prefix.get(), n), ignored, used, why) ==
                   parse_result::need_more);
        FUZZ_CHECK(used == 0);
    }
}

void check_answer(std::span<const std::byte> wire) {
    auto copy = exact_copy(wire, wire.size());
    answer a;
    std::size_t consumed = 0;
    auto result = parse_answer(std::span(copy.get(), wire.size()), a, consumed);
    if (result != parse_result::done) {
        FUZZ_CHECK(consumed == 0);
        return;
    }
    FUZZ_CHECK(consumed == answer_size);
    FUZZ_CHECK(a.version == protocol_version || a.code == status::unsupported_version);
    auto encoded = encode_answer(a);
    // The mode byte is only meaningful with ok; everything else round-trips.
    if (a.code == status::ok || wire[6] == std::byte{0})
        FUZZ_CHECK(std::memcmp(encoded.data(), wire.data(), answer_size) == 0);
}

// A request built from the input's bytes goes through encode and parse unchanged.
void check_round_trip(std::span<const std::byte> data) {
    if (data.empty())
        return;
    std::size_t split = std::size_t(data[0]) % (data.size());
    request r;
    r.pipe_name.assign(reinterpret_cast<const char*>(data.data()) + 1,
                       std::min<std::size_t>(split, max_pipe_name));
    r.token.assign(reinterpret_cast<const char*>(data.data()) + 1 + split,
                   std::min<std::size_t>(data.size() - 1 - split, max_token));
    if (!valid_pipe_name(r.pipe_name))
        return;
    auto wire = encode_request(r);
    request back;
    std::size_t consumed = 0;
    status why{};
    FUZZ_CHECK(parse_request(wire, back, consumed, why) == parse_result::done);
    FUZZ_CHECK(consumed == wire.size());
    FUZZ_CHECK(back.pipe_name == r.pipe_name && back.token == r.token);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    std::span<const std::byte> wire(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
    if (data[0] & 1)
        check_answer(wire);
    else
        check_request(wire);
    check_round_trip(wire);
    return 0;
}
