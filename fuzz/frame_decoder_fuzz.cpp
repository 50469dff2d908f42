// libFuzzer target for the message framing (src/framing/): the bytes a message-mode pipe
// receives come from another process, so the decoder must survive anything.
//
// Input: byte 0 picks the maximum message size, bytes 1..4 seed the chunking and read sizes,
// the rest is the wire (the bytes a peer sent). Checks, aborting on any violation:
//  1. frame_decoder, fed the wire in random chunks with random payload limits, reports exactly
//     what an independent whole-buffer parse (reference_parse) finds: the same messages and
//     rejections in order; it always makes progress and never reads outside its input.
//  2. message_channel over a fake record transport returns, in message read mode with random
//     buffer sizes, the same messages, rejections and ending; in byte read mode, the same bytes.
//  3. The messages written through message_channel come out in units no larger than the
//     transport allows and decode back to the same messages; an oversize write sends nothing.
// tests/sync/framing_test.cpp runs this entry point on the corpus and on random inputs in every
// build; configured with -DNPIPE_BUILD_FUZZ=ON (clang), fuzz/ builds it as a libFuzzer binary.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "framing/frame.hpp"
#include "framing/frame_decoder.hpp"
#include "framing/message_channel.hpp"
#include "fuzz_check.hpp"
#include "npipe/errors.hpp"

namespace {

using npipe::detail::frame_decoder;
using bytes = std::vector<std::byte>;

using npipe::fuzz::rng;

enum class ending { complete, too_large, cut_off };

struct message {
    bytes delivered;  ///< payload a decoder hands out (for a rejected one: before the rejection)
    ending how = ending::cut_off;
    bool operator==(const message&) const = default;
};

// The obvious parse of a whole buffer, written independently of frame_decoder.
std::vector<message> reference_parse(std::span<const std::byte> wire, std::size_t max) {
    std::vector<message> out;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        message m;
        std::uint64_t total = 0;
        bool rejected = false, finished = false;
        while (!finished) {
            if (wire.size() - pos < 4) {
                pos = wire.size();
                break;
            }
            std::uint32_t h = std::uint32_t(wire[pos]) | std::uint32_t(wire[pos + 1]) << 8 |
                              std::uint32_t(wire[pos + 2]) << 16 |
                              std::uint32_t(wire[pos + 3]) << 24;
            pos += 4;
            std::size_t len = h & 0x7fffffffu;
            if (!rejected) {
                // An empty frame that is not the message's last counts as its 4-byte header
                // (docs/protocol.md), so endless empty frames end as an oversize message.
                total += len == 0 && (h & 0x80000000u) ? 4 : len;
                rejected = total > max;
            }
            std::size_t have = std::min(len, wire.size() - pos);
            if (!rejected)
                m.delivered.insert(m.delivered.end(), wire.begin() + static_cast<long>(pos),
                                   wire.begin() + static_cast<long>(pos + have));
            pos += have;
            if (have < len)
                break;
            finished = (h & 0x80000000u) == 0;
        }
        m.how = rejected ? ending::too_large : finished ? ending::complete : ending::cut_off;
        out.push_back(std::move(m));
    }
    return out;
}

// 1. The decoder alone, fed in chunks.
std::vector<message> decode_in_chunks(std::span<const std::byte> wire, std::size_t max, rng& r) {
    frame_decoder decoder(max);
    std::vector<message> out;
    message current;
    std::size_t pos = 0;
    std::size_t calls = 0;
    bool force_room = false;
    while (pos < wire.size()) {
        std::size_t chunk_size = 1 + r.below(r.below(4) == 0 ? 9 : 300);
        auto chunk = wire.subspan(pos, std::min(chunk_size, wire.size() - pos));
        // Copied to a buffer of exactly its size, so ASan catches a read past the input.
        auto copy = std::make_unique<std::byte[]>(chunk.size());
        std::memcpy(copy.get(), chunk.data(), chunk.size());
        std::span<const std::byte> input(copy.get(), chunk.size());
        for (;;) {
            FUZZ_CHECK(++calls < 8 * wire.size() + 64);
            std::size_t room = force_room ? 1 + r.below(40) : r.below(40);
            force_room = false;
            auto res = decoder.next(input, room);
            FUZZ_CHECK(res.consumed <= input.size());
            auto at = input.data() + res.consumed;
            input = input.subspan(res.consumed);
            if (res.what == frame_decoder::event::need_input) {
                FUZZ_CHECK(input.empty());
                break;
            }
            if (res.what == frame_decoder::event::payload) {
                FUZZ_CHECK(res.payload.size() <= room);
                FUZZ_CHECK(res.payload.data() + res.payload.size() ==
                           at);  // inside what it consumed
                if (res.payload.empty()) {
                    FUZZ_CHECK(room == 0);
                    force_room = true;
                }
                current.delivered.insert(current.delivered.end(), res.payload.begin(),
                                         res.payload.end());
                continue;
            }
            current.how = res.what == frame_decoder::event::message_end ? ending::complete
                                                                        : ending::too_large;
            FUZZ_CHECK(!decoder.in_message());
            out.push_back(std::move(current));
            current = {};
        }
        pos += chunk.size();
    }
    // Drain events that need no input (a final frame finished by the last chunk).
    for (;;) {
        FUZZ_CHECK(++calls < 8 * wire.size() + 64);
        auto res = decoder.next({}, 1);
        FUZZ_CHECK(res.consumed == 0);
        if (res.what == frame_decoder::event::need_input)
            break;
        FUZZ_CHECK(res.what == frame_decoder::event::message_end);
        current.how = ending::complete;
        out.push_back(std::move(current));
        current = {};
    }
    if (decoder.in_message())
        out.push_back(std::move(current));  // cut_off
    else
        FUZZ_CHECK(current.delivered.empty());
    return out;
}

// A record transport that hands out pre-cut records and collects what is sent.
class fake_transport final : public npipe::detail::transport {
  public:
    fake_transport(std::deque<bytes> records, std::size_t receive_size, std::size_t send_size,
                   std::vector<bytes>* sent)
        : records_(std::move(records)),
          receive_size_(receive_size),
          send_size_(send_size),
          sent_(sent) {}

    bool keeps_boundaries() const noexcept override { return true; }

    std::size_t receive(std::span<std::byte> buffer, std::chrono::nanoseconds,
                        std::error_code& ec) noexcept override {
        ec.clear();
        if (records_.empty())
            return 0;
        auto record = std::move(records_.front());
        records_.pop_front();
        FUZZ_CHECK(record.size() <= buffer.size());
        std::memcpy(buffer.data(), record.data(), record.size());
        return record.size();
    }

    std::size_t send(std::span<const std::span<const std::byte>> pieces,
                     std::error_code& ec) noexcept override {
        ec.clear();
        bytes unit;
        for (auto p : pieces)
            unit.insert(unit.end(), p.begin(), p.end());
        FUZZ_CHECK(unit.size() <= send_size_);
        FUZZ_CHECK(sent_ != nullptr);
        std::size_t n = unit.size();
        sent_->push_back(std::move(unit));
        return n;
    }

    std::size_t max_send_size() const noexcept override { return send_size_; }
    std::size_t receive_size() const noexcept override { return receive_size_; }

    // Nothing to shut down, end or close: the records are in memory.
    bool shutdown(npipe::detail::shutdown_how, std::error_code& ec) noexcept override {
        ec.clear();
        return true;
    }
    void end() noexcept override {}
    void close() noexcept override {}
    npipe::peer_credentials peer(std::error_code& ec) const noexcept override {
        ec = npipe::errc::not_supported;
        return {};
    }
    npipe::pipe_stream::native_handle_type native_handle() const noexcept override { return -1; }

  private:
    std::deque<bytes> records_;
    std::size_t receive_size_, send_size_;
    std::vector<bytes>* sent_;
};

std::unique_ptr<npipe::detail::message_channel> channel_over(std::span<const std::byte> wire,
                                                             std::size_t max, rng& r) {
    std::size_t receive_size = 1 + r.below(r.below(2) ? 16 : 200);
    std::deque<bytes> records;
    for (std::size_t pos = 0; pos < wire.size();) {
        std::size_t n = std::min(1 + r.below(receive_size), wire.size() - pos);
        records.emplace_back(wire.begin() + static_cast<long>(pos),
                             wire.begin() + static_cast<long>(pos + n));
        pos += n;
    }
    return std::make_unique<npipe::detail::message_channel>(
        std::make_shared<fake_transport>(std::move(records), receive_size, 64, nullptr), max);
}

// 2a. message_channel in message read mode: what an application assembling messages sees.
std::vector<message> read_messages(std::span<const std::byte> wire, std::size_t max, rng& r) {
    auto channel = channel_over(wire, max, r);
    std::vector<message> out;
    message current;
    bytes buffer(300);
    for (std::size_t reads = 0;; ++reads) {
        FUZZ_CHECK(reads < 2 * wire.size() + 16);
        std::size_t size = 1 + r.below(r.below(2) ? 7 : 300);
        std::error_code ec;
        std::size_t n =
            channel->read(std::span(buffer.data(), size), npipe::transmission_mode::message, ec);
        FUZZ_CHECK(n <= size);
        if (ec) {
            FUZZ_CHECK(n == 0);
            FUZZ_CHECK(channel->is_message_complete());
            if (ec == npipe::errc::message_too_large) {
                out.push_back({{}, ending::too_large});
            } else {
                FUZZ_CHECK(ec == npipe::errc::broken_pipe);
                out.push_back({{}, ending::cut_off});
            }
            current = {};
            continue;
        }
        current.delivered.insert(current.delivered.end(), buffer.begin(),
                                 buffer.begin() + static_cast<long>(n));
        if (n == 0 && channel->end_of_stream()) {
            FUZZ_CHECK(current.delivered.empty());
            break;
        }
        FUZZ_CHECK(!channel->end_of_stream());
        if (channel->is_message_complete()) {
            current.how = ending::complete;
            out.push_back(std::move(current));
            current = {};
        } else {
            FUZZ_CHECK(n == size);  // an incomplete message only stops a read with a full buffer
        }
    }
    return out;
}

// 2b. message_channel in byte read mode: the payload bytes as a stream.
bytes read_stream(std::span<const std::byte> wire, std::size_t max, rng& r,
                  std::size_t& rejections) {
    auto channel = channel_over(wire, max, r);
    bytes out;
    bytes buffer(300);
    rejections = 0;
    for (std::size_t reads = 0;; ++reads) {
        FUZZ_CHECK(reads < 2 * wire.size() + 16);
        std::size_t size = 1 + r.below(300);
        std::error_code ec;
        std::size_t n =
            channel->read(std::span(buffer.data(), size), npipe::transmission_mode::byte, ec);
        FUZZ_CHECK(n <= size);
        if (ec) {
            FUZZ_CHECK(ec == npipe::errc::message_too_large);
            FUZZ_CHECK(n == 0);
            ++rejections;
            continue;
        }
        if (n == 0) {
            FUZZ_CHECK(channel->end_of_stream());
            break;
        }
        out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<long>(n));
    }
    return out;
}

// 3. Writing: frames cut to the transport's unit, decoding back to the same messages.
void check_writes(const std::vector<message>& messages, std::size_t max, rng& r) {
    std::vector<bytes> sent;
    std::size_t send_size = npipe::detail::frame_header_size + 1 + r.below(100);
    npipe::detail::message_channel channel(
        std::make_shared<fake_transport>(std::deque<bytes>{}, 64, send_size, &sent), max);
    std::vector<message> written;
    for (auto& m : messages) {
        std::error_code ec;
        std::size_t before = sent.size();
        channel.write(m.delivered, ec);
        if (m.delivered.size() > max) {
            FUZZ_CHECK(ec == npipe::errc::message_too_large);
            FUZZ_CHECK(sent.size() == before);
        } else {
            FUZZ_CHECK(!ec);
            written.push_back({m.delivered, ending::complete});
        }
    }
    if (max <= 1000) {
        bytes oversize(max + 1, std::byte{0x5a});
        std::error_code ec;
        std::size_t before = sent.size();
        channel.write(oversize, ec);
        FUZZ_CHECK(ec == npipe::errc::message_too_large);
        FUZZ_CHECK(sent.size() == before);
    }
    bytes wire;
    for (auto& unit : sent)
        wire.insert(wire.end(), unit.begin(), unit.end());
    FUZZ_CHECK(reference_parse(wire, max) == written);
}

constexpr std::size_t max_sizes[8] = {0, 1, 3, 16, 100, 1000, 70000, std::size_t{64} << 20};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 5)
        return 0;
    std::size_t max = max_sizes[data[0] % 8];
    std::uint32_t seed = std::uint32_t(data[1]) | std::uint32_t(data[2]) << 8 |
                         std::uint32_t(data[3]) << 16 | std::uint32_t(data[4]) << 24;
    rng r{seed | 1};
    std::span<const std::byte> wire(reinterpret_cast<const std::byte*>(data) + 5, size - 5);

    auto expected = reference_parse(wire, max);
    FUZZ_CHECK(decode_in_chunks(wire, max, r) == expected);

    std::vector<message> as_read;
    for (auto& m : expected)
        as_read.push_back(m.how == ending::complete ? m : message{{}, m.how});
    FUZZ_CHECK(read_messages(wire, max, r) == as_read);

    bytes stream;
    std::size_t too_large = 0;
    for (auto& m : expected) {
        stream.insert(stream.end(), m.delivered.begin(), m.delivered.end());
        too_large += m.how == ending::too_large;
    }
    std::size_t rejections = 0;
    FUZZ_CHECK(read_stream(wire, max, r, rejections) == stream);
    FUZZ_CHECK(rejections == too_large);

    std::vector<message> complete;
    for (auto& m : expected)
        if (m.how == ending::complete)
            complete.push_back(m);
    check_writes(complete, max, r);
    return 0;
}
