// The shared-memory rings against a hostile peer: the fuzz target's checks
// (fuzz/shm_ring_fuzz.cpp) on random scripts in every build, and TSan's view of two threads
// sharing a ring as two processes do.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "transport/posix_shared_memory/shm_ring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace shm = npipe::detail::shm;

TEST(ShmRingFuzzRegression, RandomScriptsPassTheFuzzTargetsChecks) {
    std::uint32_t x = 0x2545f491;
    auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    };
    for (int i = 0; i < 3000; ++i) {
        std::vector<std::uint8_t> input(1 + next() % 600);
        for (auto& b : input)
            b = static_cast<std::uint8_t>(next());
        // Half of the scripts keep the peer honest (no op 4 or 5), so the data checks run deep.
        if (i % 2 == 0)
            for (std::size_t k = 1; k < input.size(); ++k)
                if ((input[k] & 7) == 4 || (input[k] & 7) == 5)
                    input[k] ^= 4;
        LLVMFuzzerTestOneInput(input.data(), input.size());  // aborts on a violated check
    }
}

TEST(ShmRing, AWriterAndAReaderThreadMoveEveryByteInOrder) {
    const std::uint64_t sizes[2] = {shm::min_ring_size, shm::min_ring_size};
    std::vector<std::uint64_t> memory(shm::mapping_size(sizes[0], sizes[1]) / 8);
    auto* base = reinterpret_cast<std::byte*>(memory.data());
    shm::ring_writer writer(base, 0, sizes);
    shm::ring_reader reader(base, 0, sizes);
    constexpr std::size_t total = 4 << 20;
    std::thread producer([&] {
        std::vector<std::byte> block(1500);
        std::size_t sent = 0;
        while (sent < total) {
            for (std::size_t i = 0; i < block.size(); ++i)
                block[i] = static_cast<std::byte>((sent + i) * 7);
            const std::span<const std::byte> piece[1] = {
                std::span(block).first(std::min(block.size(), total - sent))};
            shm::ring_status status;
            sent += writer.write(piece, status);
            ASSERT_NE(status, shm::ring_status::corrupt);
        }
    });
    std::vector<std::byte> buffer(999);
    std::size_t got = 0;
    while (got < total) {
        shm::ring_status status;
        auto n = reader.read(buffer, status);
        ASSERT_NE(status, shm::ring_status::corrupt);
        for (std::size_t i = 0; i < n; ++i)
            ASSERT_EQ(buffer[i], static_cast<std::byte>((got + i) * 7));
        got += n;
    }
    producer.join();
}
