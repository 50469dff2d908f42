// libFuzzer target for the shared-memory rings (src/transport/posix_shared_memory/shm_ring.*): the
// fuzzer plays the hostile peer of a shared-memory pipe. It shares the memory with an honest
// server end and, between the server's reads and writes, writes anything into the control page
// and the rings: honest bytes (which must arrive intact), or garbage indices and flags.
//
// Input: byte 0 picks the ring sizes; then a script, one operation per byte (low 3 bits) with
// its arguments in the following bytes. Checks, aborting on any violation (and ASan on any access
// outside the shared memory, which is an exactly sized heap block here):
//  1. a read returns at most the buffer's size and a ring's worth; a write at most what it was
//     given and a ring's worth; neither ever touches memory outside the mapping;
//  2. while the peer only ever wrote honest indices, nothing is corrupt, every byte the peer
//     wrote arrives in order and intact, and the peer receives every byte the server wrote;
//  3. once an index was tampered with, reads and writes still stay in bounds, whatever they
//     report;
//  4. a hello decodes only with the magic, version 1 and valid ring sizes.
// tests/sync/shm_ring_test.cpp runs this entry point on random scripts in every build;
// configured with -DNPIPE_BUILD_FUZZ=ON (clang), fuzz/ builds it as a libFuzzer binary.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/posix_shared_memory/shm_ring.hpp"

namespace {

namespace shm = npipe::detail::shm;

struct script {
    const std::uint8_t* data;
    std::size_t size, at = 0;
    bool done() const { return at >= size; }
    std::uint8_t byte() { return at < size ? data[at++] : 0; }
    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<std::uint64_t>(byte()) << (8 * i);
        return v;
    }
    std::size_t length() { return static_cast<std::size_t>(byte()) << (byte() % 6); }
};

std::uint64_t load(const std::byte* at) {
    std::uint64_t v;
    std::memcpy(&v, at, sizeof v);
    return v;
}

void store(std::byte* at, std::uint64_t v) {
    std::memcpy(at, &v, sizeof v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    script in{data, size};
    const std::uint64_t ring = std::uint64_t{shm::min_ring_size} << (in.byte() % 3);
    const std::uint64_t sizes[2] = {ring, ring};
    const std::size_t total = shm::mapping_size(ring, ring);
    // Exactly the mapping's size, so that ASan sees any access beyond it.
    auto memory = std::make_unique<std::uint64_t[]>(total / sizeof(std::uint64_t));
    auto* base = reinterpret_cast<std::byte*>(memory.get());
    std::memset(base, 0, total);

    // The honest server end: reads ring 0, writes ring 1.
    shm::ring_reader server_in(base, shm::client_to_server, sizes);
    shm::ring_writer server_out(base, shm::server_to_client, sizes);
    std::byte* control0 = base;
    std::byte* control1 = base + shm::layout::ring_stride;
    std::byte* data0 = base + shm::control_size;
    std::byte* data1 = data0 + ring;

    // The peer's honest view, and what each side is owed.
    std::uint64_t peer_written = 0, peer_read = 0;
    std::deque<std::byte> to_server, to_peer;
    bool tampered = false, corrupt = false;
    std::vector<std::byte> buffer;
    std::uint8_t counter = 0;

    while (!in.done() && !corrupt) {
        const std::uint8_t op = in.byte();
        switch (op & 7) {
            case 0: {  // the peer writes bytes honestly into ring 0
                const std::uint64_t room =
                    ring - (peer_written - load(control0 + shm::layout::read_index));
                std::size_t n = std::min<std::uint64_t>(in.length(), tampered ? ring : room);
                for (std::size_t i = 0; i < n; ++i) {
                    auto b = static_cast<std::byte>(counter++);
                    data0[(peer_written + i) & (ring - 1)] = b;
                    to_server.push_back(b);
                }
                peer_written += n;
                store(control0 + shm::layout::write_index, peer_written);
                break;
            }
            case 1: {  // the server reads
                buffer.resize(in.length());
                shm::ring_status status;
                std::size_t n = server_in.read(buffer, status);
                FUZZ_CHECK(n <= buffer.size() && n <= ring);
                if (status == shm::ring_status::corrupt) {
                    FUZZ_CHECK(tampered);
                    FUZZ_CHECK(n == 0);
                    corrupt = true;
                    break;
                }
                if (!tampered) {
                    FUZZ_CHECK(n == std::min(buffer.size(), to_server.size()));
                    for (std::size_t i = 0; i < n; ++i) {
                        FUZZ_CHECK(buffer[i] == to_server.front());
                        to_server.pop_front();
                    }
                }
                server_in.take_writer_waiting();
                break;
            }
            case 2: {  // the server writes, in up to four pieces
                std::vector<std::byte> bytes(in.length());
                for (auto& b : bytes)
                    b = static_cast<std::byte>(in.byte());
                std::size_t cut1 = bytes.empty() ? 0 : in.byte() % (bytes.size() + 1);
                std::size_t cut2 =
                    cut1 + (bytes.size() == cut1 ? 0 : in.byte() % (bytes.size() - cut1 + 1));
                const std::span<const std::byte> pieces[3] = {
                    std::span(bytes).subspan(0, cut1), std::span(bytes).subspan(cut1, cut2 - cut1),
                    std::span(bytes).subspan(cut2)};
                // The transport resumes a write part by part: bytes already written are
                // skipped, and a part may be limited.
                const std::size_t skip = in.byte() % (bytes.size() + 1);
                const std::size_t limit = (in.byte() & 1) ? SIZE_MAX : in.length();
                shm::ring_status status;
                std::size_t n = server_out.write(pieces, status, skip, limit);
                FUZZ_CHECK(n <= bytes.size() - skip && n <= limit && n <= ring);
                if (status == shm::ring_status::corrupt) {
                    FUZZ_CHECK(tampered);
                    corrupt = true;
                    break;
                }
                if (!tampered) {
                    FUZZ_CHECK(n == std::min<std::size_t>(
                                        {bytes.size() - skip, limit, ring - to_peer.size()}));
                    auto from = bytes.begin() + static_cast<std::ptrdiff_t>(skip);
                    to_peer.insert(to_peer.end(), from, from + static_cast<std::ptrdiff_t>(n));
                }
                server_out.take_reader_waiting();
                break;
            }
            case 3: {  // the peer reads ring 1 honestly
                const std::uint64_t written = load(control1 + shm::layout::write_index);
                std::uint64_t available = written - peer_read;
                if (!tampered)
                    FUZZ_CHECK(available == to_peer.size());
                std::size_t n = std::min<std::uint64_t>({in.length(), available, ring});
                for (std::size_t i = 0; i < n; ++i) {
                    auto b = data1[(peer_read + i) & (ring - 1)];
                    if (!tampered) {
                        FUZZ_CHECK(b == to_peer.front());
                        to_peer.pop_front();
                    }
                }
                peer_read += n;
                store(control1 + shm::layout::read_index, peer_read);
                break;
            }
            case 4: {  // the peer writes garbage over an index or a flag
                static constexpr std::size_t fields[] = {
                    shm::layout::write_index, shm::layout::read_index, shm::layout::writer_done,
                    shm::layout::reader_gone, shm::layout::writer_waiting};
                std::byte* control = (in.byte() & 1) ? control1 : control0;
                std::size_t field = fields[in.byte() % std::size(fields)];
                store(control + field, in.u64());
                tampered = true;
                break;
            }
            case 5: {  // the peer scribbles anywhere in the control page or the rings
                std::size_t at = static_cast<std::size_t>(in.u64() % (total - 8)) & ~std::size_t{7};
                store(base + at, in.u64());
                tampered = true;
                break;
            }
            case 6: {  // the flags both sides look at before sleeping
                server_in.set_waiting();
                server_out.set_waiting();
                (void)server_in.readable();
                (void)server_out.writable();
                (void)server_in.writer_done();
                (void)server_out.reader_gone();
                break;
            }
            case 7: {  // a hello off the wire
                std::byte wire[shm::hello::size];
                for (auto& b : wire)
                    b = static_cast<std::byte>(in.byte());
                if (op & 8) {  // mostly valid: the magic and version in place
                    store(wire, shm::hello::magic);
                    store(wire + 8, shm::hello::current_version);
                }
                shm::hello h;
                bool ok = h.decode(wire);
                bool valid = load(wire) == shm::hello::magic &&
                             load(wire + 8) == shm::hello::current_version &&
                             shm::valid_ring_size(load(wire + 16)) &&
                             shm::valid_ring_size(load(wire + 24));
                FUZZ_CHECK(ok == valid);
                if (ok) {
                    std::byte again[shm::hello::size];
                    h.encode(again);
                    FUZZ_CHECK(std::memcmp(again, wire, sizeof wire) == 0);
                }
                break;
            }
        }
    }
    return 0;
}
