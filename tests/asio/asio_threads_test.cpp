// npipe::asio with several threads, and interop with the synchronous library.
#include "asio/asio_test_support.hpp"

using namespace npipe_asio_test;

namespace {

// ---------------------------------------------------------------------------------------------
// Several threads: a thread pool, the acceptor on a strand and every pipe on a strand of its own,
// pipes closed (giving their instance slot back) on other threads than the acceptor's. Meant to
// run under ThreadSanitizer as well.

TEST(AsioThreads, ThreadPoolWithStrandsEchoesAndKeepsTheQuota) {
    ::asio::thread_pool pool(4);
    auto name = unique_pipe_name("pool");
    auto acceptor_strand = ::asio::make_strand(pool);
    na::named_pipe_acceptor acceptor(acceptor_strand, name, npipe::pipe_direction::in_out, 3);
    std::atomic<int> live{0}, most{0}, served{0};
    std::promise<void> all_served;
    ::asio::co_spawn(
        acceptor_strand,
        [&]() -> ::asio::awaitable<void> {
            for (;;) {
                auto [ec, pipe] =
                    co_await acceptor.async_accept(::asio::make_strand(pool), as_tuple);
                if (ec)
                    co_return;
                int now = ++live;
                for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
                }
                auto ex = pipe.get_executor();
                ::asio::co_spawn(
                    ex,
                    [&, p = std::move(pipe)]() mutable -> ::asio::awaitable<void> {
                        std::vector<char> buffer(4096);
                        for (;;) {
                            auto [ec, n] =
                                co_await p.async_read_some(::asio::buffer(buffer), as_tuple);
                            if (ec)
                                break;
                            co_await ::asio::async_write(p, ::asio::buffer(buffer, n),
                                                         use_awaitable);
                        }
                        --live;  // before the slot is given back, so `most` is exact
                        p.close();
                        if (++served == 12)
                            all_served.set_value();
                    },
                    ::asio::detached);
            }
        },
        ::asio::detached);
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int i = 0; i < 12; ++i)
        clients.emplace_back([&, i] {
            npipe::named_pipe_client c(name);
            c.connect(10s);
            std::string payload = npipe::test::pattern(20000 + i, i + 5);
            c.write(payload);
            std::string back(payload.size(), '\0');
            for (std::size_t have = 0; have < back.size();) {
                auto n = c.read(std::as_writable_bytes(std::span(back)).subspan(have));
                if (n == 0)
                    return;
                have += n;
            }
            if (back == payload)
                ++ok;
        });
    for (auto& t : clients)
        t.join();
    EXPECT_EQ(all_served.get_future().wait_for(20s), std::future_status::ready);
    ::asio::post(acceptor_strand, [&] { acceptor.close(); });
    pool.join();
    EXPECT_EQ(ok, 12);
    EXPECT_EQ(served, 12);
    EXPECT_LE(most, 3);
    EXPECT_GE(most, 1);
}

// ---------------------------------------------------------------------------------------------
// Interop with the synchronous library, both ways and both transmission modes.

TEST(AsioInterop, AsyncServerSyncClients) {
    for (auto mode : {npipe::transmission_mode::byte, npipe::transmission_mode::message}) {
        ::asio::io_context io;
        auto name = unique_pipe_name("a-srv");
        na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out, 4, mode);
        const bool message = mode == npipe::transmission_mode::message;
        // An echo server: each client's data straight back, until the client closes.
        int served = 0;
        std::function<void()> accept_next = [&] {
            acceptor.async_accept([&](std::error_code ec, na::pipe_stream pipe) {
                if (ec)
                    return;
                accept_next();
                spawn(io, echo(std::move(pipe), message, [&] {
                          if (++served == 8)
                              acceptor.close();
                      }));
            });
        };
        accept_next();
        std::thread runner([&] { run(io); });
        std::vector<std::thread> clients;
        std::atomic<int> ok{0};
        for (int i = 0; i < 8; ++i)
            clients.emplace_back([&, i] {
                npipe::named_pipe_client c(name);
                c.connect(10s);
                EXPECT_EQ(c.transmission_mode(), mode);
                if (message)
                    c.set_read_mode(npipe::transmission_mode::message);
                std::string payload = npipe::test::pattern(1000 + 37 * i, i + 1);
                c.write(payload);
                std::string back(payload.size(), '\0');
                std::size_t have = 0;
                while (have < back.size()) {
                    auto n = c.read(std::as_writable_bytes(std::span(back)).subspan(have));
                    ASSERT_GT(n, 0u);
                    have += n;
                }
                if (back == payload)
                    ++ok;
            });
        for (auto& t : clients)
            t.join();
        runner.join();
        EXPECT_EQ(ok, 8);
    }
}

TEST(AsioInterop, AsyncClientSyncServer) {
    for (auto mode : {npipe::transmission_mode::byte, npipe::transmission_mode::message}) {
        auto name = unique_pipe_name("s-srv");
        npipe::named_pipe_server server(name, npipe::pipe_direction::in_out, 1, mode);
        std::thread t([&] {
            server.wait_for_connection(10s);
            std::vector<std::byte> buffer(1 << 16);
            for (;;) {
                auto n = server.read(buffer);
                if (n == 0 && server.end_of_stream())
                    break;
                if (n == 0 && mode == npipe::transmission_mode::byte)
                    break;
                server.write(std::span(buffer).first(n));
            }
        });
        ::asio::io_context io;
        std::string back;
        spawn(io, [&]() -> ::asio::awaitable<void> {
            na::named_pipe_client client(co_await ::asio::this_coro::executor, name);
            co_await client.async_connect(5s, use_awaitable);
            EXPECT_EQ(client.transmission_mode(), mode);
            std::string payload = npipe::test::pattern(50000, 9);
            if (mode == npipe::transmission_mode::message) {
                co_await client.async_write_message(::asio::buffer(payload), use_awaitable);
                co_await client.async_read_message(::asio::dynamic_buffer(back), use_awaitable);
            } else {
                co_await ::asio::async_write(client, ::asio::buffer(payload), use_awaitable);
                back.resize(payload.size());
                co_await ::asio::async_read(client, ::asio::buffer(back), use_awaitable);
            }
            EXPECT_EQ(back, payload);
        });
        run(io);
        t.join();
        EXPECT_EQ(back.size(), 50000u);
    }
}

}  // namespace
