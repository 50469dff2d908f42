// libFuzzer target for npipe::rpc's entry points (src/rpc/): the framings' decoder and the JSON
// entry point, which read what another process sent.
//
// Input: byte 0 picks the framing (bits 0-1) and the size limit (bits 2-4), bytes 1..4 seed the
// chunking, the rest is the wire. Checks, aborting on any violation:
//  1. frame_decoder, fed the wire in random chunks (message ends at random chunk ends for the
//     message framing), never buffers more than the limit plus a header block plus one chunk,
//     never returns a document over the limit, and once it fails keeps failing.
//  2. Each document goes through parse_document and classify without throwing; a parsed
//     document serializes and parses back to the same value; every message is well formed for
//     its kind (a request has a method, a response a result xor an error...).
//  3. The documents, encoded again with encode_frame and decoded whole, come back the same.
// tests/rpc/rpc_test.cpp runs this entry point on random inputs in every build; configured with
// -DNPIPE_BUILD_FUZZ=ON (clang), fuzz/ builds it as a libFuzzer binary.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "npipe/rpc/framing.hpp"
#include "npipe/rpc/message.hpp"

namespace {

namespace rpc = npipe::rpc;

using npipe::fuzz::rng;

constexpr std::size_t limits[8] = {0, 1, 16, 100, 1000, 4096, 65536, 1 << 20};

void check_document(const std::string& text) {
    std::error_code ec;
    auto doc = rpc::parse_document(text, ec);
    FUZZ_CHECK(doc.has_value() == !ec);
    if (!doc)
        return;
    auto again = rpc::parse_document(rpc::serialize(*doc), ec);
    FUZZ_CHECK(again && *again == *doc);
    for (const auto& m : rpc::classify(*doc)) {
        using kind = rpc::message::kind;
        switch (m.type) {
            case kind::request:
            case kind::notification:
                FUZZ_CHECK(m.params.is_null() || m.params.is_array() || m.params.is_object());
                FUZZ_CHECK(m.type == kind::notification || m.id.is_null() || m.id.is_string() ||
                           m.id.is_number());
                break;
            case kind::response:
                FUZZ_CHECK(m.result.is_null() || m.error.is_null());
                break;
            case kind::invalid:
                FUZZ_CHECK(m.error.is_object() && m.error["code"] == -32600);
                FUZZ_CHECK(m.id.is_null() || m.id.is_string() || m.id.is_number_integer());
                break;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 5)
        return 0;
    const auto f = static_cast<rpc::framing>(data[0] & 3);
    const std::size_t max = limits[(data[0] >> 2) & 7];
    rng r{static_cast<std::uint32_t>(data[1] | data[2] << 8 | data[3] << 16 | data[4] << 24) | 1};
    std::string_view wire(reinterpret_cast<const char*>(data + 5), size - 5);

    rpc::frame_decoder decoder(f, max);
    std::vector<std::string> docs;
    bool failed = false;
    for (std::size_t at = 0; at < wire.size();) {
        std::size_t chunk = std::min<std::size_t>(wire.size() - at, 1 + r.next() % 300);
        decoder.feed(wire.substr(at, chunk), r.next() % 2 == 0);
        at += chunk;
        std::error_code ec;
        while (auto doc = decoder.next(ec)) {
            FUZZ_CHECK(!failed);
            FUZZ_CHECK(doc->size() <= max);
            docs.push_back(std::move(*doc));
        }
        if (ec)
            failed = true;
        FUZZ_CHECK(decoder.buffered() <= max + 4096 + 4 + chunk);
        if (failed) {
            decoder.feed("x", true);
            FUZZ_CHECK(!decoder.next(ec) && ec);
            break;
        }
    }
    for (const auto& d : docs)
        check_document(d);

    if (f != rpc::framing::message) {
        std::string again;
        std::vector<std::string> expected;
        for (const auto& d : docs) {
            if (f == rpc::framing::newline &&
                (d.find('\n') != std::string::npos || d.back() == '\r' ||
                 d.find_first_not_of(" \t") == std::string::npos))
                continue;  // not representable as one line
            rpc::encode_frame(f, d, again);
            expected.push_back(d);
        }
        rpc::frame_decoder whole(f, max);
        whole.feed(again);
        std::error_code ec;
        std::vector<std::string> decoded;
        while (auto doc = whole.next(ec))
            decoded.push_back(std::move(*doc));
        FUZZ_CHECK(!ec);
        FUZZ_CHECK(decoded == expected);
    }
    return 0;
}
