// Performance properties that are not timings (issue 5): byte-mode reads and writes allocate
// nothing, an idle connected pipe is small in user space, and the opt-in performance options
// (coalesce_messages, spin_before_block) keep the pipe's semantics. Global operator new/delete
// are replaced in this binary to count allocations.
#include <gtest/gtest.h>
#include <malloc.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "support/test_support.hpp"

namespace {

std::atomic<std::size_t> allocations{0};
std::atomic<long long> live_bytes{0};

void* counted_alloc(std::size_t size) {
    void* p = std::malloc(size ? size : 1);
    if (!p)
        throw std::bad_alloc();
    allocations.fetch_add(1, std::memory_order_relaxed);
    live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
    return p;
}

void* counted_alloc_aligned(std::size_t size, std::align_val_t align) {
    void* p = std::aligned_alloc(
        static_cast<std::size_t>(align),
        (size + static_cast<std::size_t>(align) - 1) & ~(static_cast<std::size_t>(align) - 1));
    if (!p)
        throw std::bad_alloc();
    allocations.fetch_add(1, std::memory_order_relaxed);
    live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
    return p;
}

void counted_free(void* p) noexcept {
    if (!p)
        return;
    live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
    std::free(p);
}

}  // namespace

void* operator new(std::size_t size) {
    return counted_alloc(size);
}
void* operator new[](std::size_t size) {
    return counted_alloc(size);
}
void* operator new(std::size_t size, std::align_val_t a) {
    return counted_alloc_aligned(size, a);
}
void* operator new[](std::size_t size, std::align_val_t a) {
    return counted_alloc_aligned(size, a);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(size);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(size);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept {
    counted_free(p);
}
void operator delete[](void* p) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}

namespace {

using namespace std::chrono_literals;
using npipe::named_pipe_client;
using npipe::named_pipe_server;
using npipe::pipe_direction;
using npipe::pipe_options;
using npipe::transmission_mode;
using npipe::test::unique_pipe_name;

struct pipe_pair {
    pipe_pair(const std::string& name, transmission_mode mode, const pipe_options& o = {})
        : server(name, pipe_direction::in_out, 1, mode, o),
          client(".", name, pipe_direction::in_out, o) {
        client.connect(5s);
        server.wait_for_connection(5s);
        if (mode == transmission_mode::message)
            client.set_read_mode(transmission_mode::message);
    }
    named_pipe_server server;
    named_pipe_client client;
};

std::span<const std::byte> bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string read_message(npipe::pipe_stream& p) {
    std::string out(256, '\0');
    auto n = p.read(std::as_writable_bytes(std::span(out)));
    EXPECT_TRUE(p.is_message_complete());
    out.resize(n);
    return out;
}

bool readable_now(const npipe::pipe_stream& p) {
    pollfd fd{p.native_handle(), POLLIN, 0};
    return ::poll(&fd, 1, 0) == 1;
}

// The allocation properties hold on every transport.
class perf_properties_on : public ::testing::TestWithParam<npipe::test::transport_kind> {
  protected:
    pipe_options options() const { return npipe::test::transport_options(GetParam()); }
};
NPIPE_ON_EVERY_TRANSPORT(perf_properties_on);

TEST_P(perf_properties_on, byte_mode_read_and_write_allocate_nothing) {
    pipe_pair p(unique_pipe_name("alloc"), transmission_mode::byte, options());
    std::vector<std::byte> out(4096, std::byte{7}), in(4096);
    auto round = [&](std::size_t size) {
        p.client.write(std::span(out).first(size));
        std::size_t got = 0;
        while (got < size)
            got += p.server.read(std::span(in).subspan(got, size - got));
        p.server.write(std::span(in).first(size));
        got = 0;
        while (got < size)
            got += p.client.read(std::span(in).subspan(got, size - got));
    };
    round(64);  // warm-up: anything lazily set up on first use is not a per-call cost
    const auto before = allocations.load();
    for (int i = 0; i < 200; ++i)
        round(i % 2 ? 1 : 4096);
    EXPECT_EQ(allocations.load() - before, 0u);
}

TEST(perf_properties, spinning_byte_reads_allocate_nothing) {
    pipe_options o;
    o.spin_before_block = 50us;
    pipe_pair p(unique_pipe_name("spinalloc"), transmission_mode::byte, o);
    std::byte b{1};
    p.client.write(std::span(&b, 1));
    ASSERT_EQ(p.server.read(std::span(&b, 1)), 1u);
    const auto before = allocations.load();
    for (int i = 0; i < 100; ++i) {
        p.client.write(std::span(&b, 1));
        ASSERT_EQ(p.server.read(std::span(&b, 1)), 1u);
    }
    EXPECT_EQ(allocations.load() - before, 0u);
}

/// User-space bytes per end of a connected, idle pipe: the pipes' allocations, measured while
/// eight pairs are held, divided by the ends. `exchange` first sends a message each way and
/// reads it, so what a used pipe keeps is counted too.
long long idle_bytes_per_end(transmission_mode mode, bool exchange) {
    {
        pipe_pair warm(unique_pipe_name("warm"), mode);  // one-time set-up (and thread buffers)
        warm.client.write("warm");
        EXPECT_EQ(read_message(warm.server), "warm");
        warm.server.write("warm");
        EXPECT_EQ(read_message(warm.client), "warm");
    }
    constexpr int pairs = 8;
    std::vector<std::string> names;
    for (int i = 0; i < pairs; ++i)
        names.push_back(unique_pipe_name("idle"));  // the names are the caller's, not the pipes'
    std::vector<std::optional<pipe_pair>> held(pairs);
    const long long before = live_bytes.load();
    for (int i = 0; i < pairs; ++i) {
        auto& p =
            held[static_cast<std::size_t>(i)].emplace(names[static_cast<std::size_t>(i)], mode);
        if (exchange) {
            p.client.write("ping");
            EXPECT_EQ(read_message(p.server), "ping");
            p.server.write("pong");
            EXPECT_EQ(read_message(p.client), "pong");
        }
    }
    return (live_bytes.load() - before) / (2 * pairs);
}

TEST(perf_properties, idle_connected_pipe_costs_under_4_kib) {
    for (auto mode : {transmission_mode::byte, transmission_mode::message})
        for (bool exchange : {false, true}) {
            const auto per_end = idle_bytes_per_end(mode, exchange);
            std::cout << "user-space bytes per idle connected "
                      << (mode == transmission_mode::byte ? "byte" : "message") << "-mode pipe end"
                      << (exchange ? " after a message each way" : "") << ": " << per_end << "\n";
            EXPECT_LT(per_end, 4096);
        }
}

TEST_P(perf_properties_on, a_streaming_message_reader_allocates_nothing) {
    for (bool coalesce : {false, true}) {
        pipe_options o = options();
        o.coalesce_messages = coalesce;
        pipe_pair p(unique_pipe_name("streamalloc"), transmission_mode::message, o);
        constexpr int warm_up = 100, count = 5000;
        std::thread writer([&] {
            std::string m(64, 'm');
            for (int i = 0; i < warm_up + count; ++i)
                p.client.write(m);
            p.client.flush();
        });
        std::byte buf[256];
        for (int i = 0; i < warm_up; ++i)
            ASSERT_EQ(p.server.read(buf), 64u);
        // The writer is running by now (its first message arrived), so nothing it set up for
        // itself is counted; from here on neither end may allocate.
        const auto before = allocations.load();
        for (int i = 0; i < count; ++i)
            ASSERT_EQ(p.server.read(buf), 64u) << i;
        const auto during = allocations.load() - before;
        writer.join();
        EXPECT_EQ(during, 0u) << (coalesce ? "coalescing" : "plain") << " message pipe";
    }
}

TEST(perf_properties, coalesced_messages_wait_for_flush_and_keep_their_boundaries) {
    pipe_options o;
    o.coalesce_messages = true;
    pipe_pair p(unique_pipe_name("coalesce"), transmission_mode::message, o);
    p.client.write("one");
    p.client.write("");
    p.client.write("three");
    EXPECT_FALSE(readable_now(p.server)) << "coalesced messages left before flush()";
    p.client.flush();
    EXPECT_EQ(read_message(p.server), "one");
    EXPECT_EQ(read_message(p.server), "");
    EXPECT_FALSE(p.server.end_of_stream());
    EXPECT_EQ(read_message(p.server), "three");
}

TEST(perf_properties, a_blocking_read_sends_what_is_coalesced) {
    pipe_options o;
    o.coalesce_messages = true;
    pipe_pair p(unique_pipe_name("reqresp"), transmission_mode::message, o);
    std::thread echo([&] {
        for (int i = 0; i < 50; ++i)
            p.server.write(read_message(p.server));  // flushed by the next read...
        p.server.flush();                            // ...or, for the last, by flush()
    });
    for (int i = 0; i < 50; ++i) {
        auto request = "request " + std::to_string(i);
        p.client.write(request);
        EXPECT_EQ(read_message(p.client), request);  // would hang if the read did not flush
    }
    echo.join();
}

TEST(perf_properties, coalesced_messages_keep_order_around_large_ones_and_reach_a_closed_peer) {
    pipe_options o;
    o.coalesce_messages = true;
    o.max_message_size = 1 << 20;
    pipe_pair p(unique_pipe_name("order"), transmission_mode::message, o);
    std::vector<std::string> sent;
    for (int i = 0; i < 3000; ++i)  // several buffers' worth, with a few messages over 64 KiB
        sent.push_back(i % 1000 == 7 ? npipe::test::pattern(200000, static_cast<std::uint32_t>(i))
                                     : std::to_string(i));
    std::thread writer([&] {
        for (auto& m : sent)
            p.client.write(m);
        p.client.close();  // no flush(): closing sends what is buffered
    });
    std::vector<std::byte> buf(1 << 20);
    for (std::size_t i = 0; i < sent.size(); ++i) {
        auto n = p.server.read(buf);
        ASSERT_TRUE(p.server.is_message_complete());
        ASSERT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), sent[i]) << i;
    }
    writer.join();
    EXPECT_EQ(p.server.read(buf), 0u);
    EXPECT_TRUE(p.server.end_of_stream());
}

TEST(perf_properties, coalescing_writers_in_several_threads_never_interleave) {
    pipe_options o;
    o.coalesce_messages = true;
    pipe_pair p(unique_pipe_name("threads"), transmission_mode::message, o);
    constexpr int threads = 4, each = 2000;
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; i < each; ++i)
                p.client.write(std::string(10 + (i % 50), static_cast<char>('a' + t)));
            p.client.flush();
        });
    std::vector<int> next(threads, 0);
    for (int i = 0; i < threads * each; ++i) {
        auto m = read_message(p.server);
        ASSERT_FALSE(m.empty());
        int t = m[0] - 'a';
        ASSERT_TRUE(t >= 0 && t < threads);
        ASSERT_EQ(m, std::string(10 + (next[static_cast<std::size_t>(t)]++ % 50), m[0]));
    }
    for (auto& w : writers)
        w.join();
}

TEST(perf_properties, spinning_reads_keep_their_semantics) {
    pipe_options o;
    o.spin_before_block = 200us;
    for (auto mode : {transmission_mode::byte, transmission_mode::message}) {
        pipe_pair p(unique_pipe_name("spin"), mode, o);
        // A reply that arrives long after the spin ended: the read must still block for it.
        std::thread late([&] {
            std::this_thread::sleep_for(20ms);
            p.server.write("late");
        });
        std::string in(16, '\0');
        auto n = p.client.read(std::as_writable_bytes(std::span(in)));
        late.join();
        EXPECT_EQ(in.substr(0, n), "late");
        p.server.write("quick");
        n = p.client.read(std::as_writable_bytes(std::span(in)));
        EXPECT_EQ(in.substr(0, n), "quick");
        p.server.close();
        EXPECT_EQ(p.client.read(std::as_writable_bytes(std::span(in))), 0u);
        EXPECT_TRUE(p.client.end_of_stream());
    }
}

TEST(perf_properties, flush_is_a_no_op_on_byte_pipes) {
    pipe_pair p(unique_pipe_name("byteflush"), transmission_mode::byte);
    p.client.write(bytes("x"));
    EXPECT_TRUE(readable_now(p.server));
    p.client.flush();
    std::byte b{};
    EXPECT_EQ(p.server.read(std::span(&b, 1)), 1u);
}

}  // namespace
