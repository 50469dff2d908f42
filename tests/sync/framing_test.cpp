// The message framing layer (src/framing/) on its own: the frame format, the decoder, and the
// fuzz target's checks run on its corpus and on random inputs (so a g++ build without
// libFuzzer still exercises them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "framing/frame.hpp"
#include "framing/frame_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using npipe::detail::frame_decoder;
using event = frame_decoder::event;
using bytes = std::vector<std::byte>;

bytes b(std::initializer_list<int> values) {
    bytes out;
    for (int v : values)
        out.push_back(static_cast<std::byte>(v));
    return out;
}

bytes text(std::string_view s) {
    auto span = std::as_bytes(std::span(s.data(), s.size()));
    return {span.begin(), span.end()};
}

bytes frame(std::string_view payload, bool more = false) {
    auto h = npipe::detail::encode_frame_header(static_cast<std::uint32_t>(payload.size()), more);
    bytes out(h.begin(), h.end());
    auto p = text(payload);
    out.insert(out.end(), p.begin(), p.end());
    return out;
}

bytes cat(std::initializer_list<bytes> parts) {
    bytes out;
    for (auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

// Decodes all of `wire` with a generous payload limit into "message" strings; rejected
// messages read "<too large>".
std::vector<std::string> decode_all(const bytes& wire, std::size_t max) {
    frame_decoder d(max);
    std::vector<std::string> out;
    std::string current;
    std::span<const std::byte> input(wire);
    for (;;) {
        auto r = d.next(input, 1 << 20);
        input = input.subspan(r.consumed);
        if (r.what == event::need_input)
            break;
        if (r.what == event::payload)
            current.append(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
        if (r.what == event::message_end)
            out.push_back(std::exchange(current, {}));
        if (r.what == event::message_too_large) {
            out.push_back("<too large>");
            current.clear();
        }
    }
    return out;
}

TEST(FrameFormat, HeaderIsLittleEndianLengthWithMoreFlagInBit31) {
    EXPECT_EQ(frame("hi"), b({2, 0, 0, 0, 'h', 'i'}));
    auto h = npipe::detail::encode_frame_header(0x123456, true);
    EXPECT_EQ(bytes(h.begin(), h.end()), b({0x56, 0x34, 0x12, 0x80}));
    EXPECT_EQ(npipe::detail::decode_frame_header(h.data()), 0x80123456u);
}

TEST(FrameFormat, MessageIsSplitIntoFramesOfAtMostTheGivenPayload) {
    std::vector<std::pair<std::uint32_t, std::string>> frames;
    auto collect = [&](const npipe::detail::frame_header& h, std::span<const std::byte> p) {
        frames.emplace_back(npipe::detail::decode_frame_header(h.data()),
                            std::string(reinterpret_cast<const char*>(p.data()), p.size()));
        return true;
    };
    auto message = text("0123456789");
    npipe::detail::for_each_frame(message, 4, collect);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0], std::make_pair(0x80000004u, std::string("0123")));
    EXPECT_EQ(frames[1], std::make_pair(0x80000004u, std::string("4567")));
    EXPECT_EQ(frames[2], std::make_pair(0x00000002u, std::string("89")));

    frames.clear();
    npipe::detail::for_each_frame({}, 4, collect);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0], std::make_pair(0u, std::string()));

    frames.clear();
    npipe::detail::for_each_frame(text("abcd"), 4, collect);  // exactly one full frame
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0], std::make_pair(4u, std::string("abcd")));
}

TEST(FrameDecoder, DecodesMessagesFramesAndEmptyMessages) {
    auto wire = cat({frame("hello"), frame(""), frame("wo", true), frame("", true), frame("rld")});
    EXPECT_EQ(decode_all(wire, 100), (std::vector<std::string>{"hello", "", "world"}));
}

TEST(FrameDecoder, HeaderAndPayloadMaySpanInputs) {
    auto wire = cat({frame("abc"), frame("de", true), frame("f")});
    frame_decoder d(100);
    std::string got;
    int ends = 0;
    for (std::size_t i = 0; i < wire.size(); ++i) {
        std::span<const std::byte> one(&wire[i], 1);
        for (;;) {
            auto r = d.next(one, 100);
            one = one.subspan(r.consumed);
            if (r.what == event::need_input)
                break;
            if (r.what == event::payload)
                got.append(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
            if (r.what == event::message_end) {
                got += '|';
                ++ends;
            }
        }
    }
    // The last frame's end is known once its last byte is in: it needs no more input.
    auto r = d.next({}, 100);
    if (r.what == event::message_end) {
        got += '|';
        ++ends;
    }
    EXPECT_EQ(got, "abc|def|");
    EXPECT_EQ(ends, 2);
    EXPECT_FALSE(d.in_message());
}

TEST(FrameDecoder, PayloadLimitZeroStillReportsAMessageEndWithoutTakingPayload) {
    auto wire = cat({frame("ab"), frame("cd")});
    frame_decoder d(100);
    auto r = d.next(wire, 2);
    ASSERT_EQ(r.what, event::payload);
    EXPECT_EQ(r.payload.size(), 2u);
    std::span<const std::byte> rest = std::span<const std::byte>(wire).subspan(r.consumed);
    r = d.next(rest, 0);  // full buffer: may the caller say "message complete"?
    EXPECT_EQ(r.what, event::message_end);
    rest = rest.subspan(r.consumed);
    r = d.next(rest, 0);  // next message's payload is waiting, but there is no room
    EXPECT_EQ(r.what, event::payload);
    EXPECT_TRUE(r.payload.empty());
    EXPECT_EQ(r.consumed, 4u);  // its header was taken
    EXPECT_TRUE(d.in_message());
}

TEST(FrameDecoder, OversizeMessageIsRejectedAtTheHeaderAndTheNextOneDecodes) {
    auto wire = cat({frame("0123456789", true), frame("abcdefghij"), frame("ok")});
    // 15 bytes allowed: the first frame (10) passes, the second pushes the total to 20.
    EXPECT_EQ(decode_all(wire, 15), (std::vector<std::string>{"<too large>", "ok"}));
    EXPECT_EQ(decode_all(wire, 20), (std::vector<std::string>{"0123456789abcdefghij", "ok"}));
}

TEST(FrameDecoder, AClaimedHugeLengthIsRejectedWithoutWaitingForTheBytes) {
    auto wire = b({0xff, 0xff, 0xff, 0x7f, 'x'});  // claims 2 GiB - 1, sends 1 byte
    frame_decoder d(std::size_t{64} << 20);
    auto r = d.next(wire, 100);
    EXPECT_EQ(r.what, event::message_too_large);
    EXPECT_EQ(r.consumed, 4u);
    r = d.next(std::span<const std::byte>(wire).subspan(4), 100);
    EXPECT_EQ(r.what, event::need_input);  // the byte is skipped, not delivered
    EXPECT_EQ(r.consumed, 1u);
    EXPECT_FALSE(d.in_message());
}

TEST(FrameDecoder, ReportsWhenTheStreamStopsInsideAMessage) {
    frame_decoder d(100);
    auto partial_header = b({5, 0});
    d.next(partial_header, 100);
    EXPECT_TRUE(d.in_message());
    d.reset();
    EXPECT_FALSE(d.in_message());
    auto wire = frame("whole");
    EXPECT_EQ(decode_all(wire, 100), (std::vector<std::string>{"whole"}));
}

// --- The fuzz target's checks, run on inputs in every build --------------------------------

std::string corpus_dir() {
    return std::string(NPIPE_TEST_SOURCE_DIR) + "/../fuzz/corpus";
}

TEST(FrameDecoderFuzzRegression, CorpusPassesTheFuzzTargetsChecks) {
    int files = 0;
    for (auto& entry : std::filesystem::directory_iterator(corpus_dir())) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
        SCOPED_TRACE(entry.path().string());
        LLVMFuzzerTestOneInput(data.data(), data.size());  // aborts on a violated check
        ++files;
    }
    EXPECT_GE(files, 10);
}

// Random but mostly well-formed wires (frames with small lengths, some flags flipped, some
// bytes corrupted, some cut short), so the checks reach deep states, not just "garbage header".
TEST(FrameDecoderFuzzRegression, RandomInputsPassTheFuzzTargetsChecks) {
    std::uint32_t x = 0x9e3779b9;
    auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    };
    for (int i = 0; i < 3000; ++i) {
        std::vector<std::uint8_t> input;
        for (int k = 0; k < 5; ++k)
            input.push_back(static_cast<std::uint8_t>(next()));
        int frames = static_cast<int>(next() % 12);
        for (int f = 0; f < frames; ++f) {
            std::uint32_t len = next() % 8 == 0 ? next() % 2000 : next() % 24;
            bool more = next() % 3 == 0;
            std::uint32_t h = len | (more ? 0x80000000u : 0u);
            for (int k = 0; k < 4; ++k)
                input.push_back(static_cast<std::uint8_t>(h >> (8 * k)));
            for (std::uint32_t p = 0; p < len; ++p)
                input.push_back(static_cast<std::uint8_t>(next()));
        }
        if (next() % 4 == 0 && input.size() > 5)
            input[5 + next() % (input.size() - 5)] ^= static_cast<std::uint8_t>(1u << (next() % 8));
        if (next() % 4 == 0 && input.size() > 5)
            input.resize(5 + next() % (input.size() - 5));
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
}

}  // namespace
