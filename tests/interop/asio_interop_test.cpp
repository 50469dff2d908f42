// npipe::asio with real .NET peers (Mono and .NET 10, each test once per runtime): an asynchronous
// npipe server serving concurrent .NET clients written with ConnectAsync/WriteAsync/ReadAsync, and
// an asynchronous npipe client that waits for a .NET server to appear and exchanges a megabyte with
// it.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "support/test_support.hpp"

namespace na = npipe::asio;
using namespace std::chrono_literals;
using namespace npipe::test;

namespace {

constexpr auto as_tuple = ::asio::experimental::as_tuple(::asio::use_awaitable);

::asio::awaitable<void> echo(na::pipe_stream pipe) {
    std::vector<char> buffer(16384);
    for (;;) {
        auto [ec, n] = co_await pipe.async_read_some(::asio::buffer(buffer), as_tuple);
        if (ec)
            co_return;
        auto [wec, w] = co_await ::asio::async_write(pipe, ::asio::buffer(buffer, n), as_tuple);
        if (wec)
            co_return;
    }
}

::asio::awaitable<void> serve(na::named_pipe_acceptor& acceptor) {
    for (;;) {
        auto [ec, pipe] = co_await acceptor.async_accept(as_tuple);
        if (ec)
            co_return;  // closed
        ::asio::co_spawn(acceptor.get_executor(), echo(std::move(pipe)), ::asio::detached);
    }
}

class AsioDotnet : public ::testing::TestWithParam<csharp_runtime> {
  protected:
    void SetUp() override { NPIPE_REQUIRE_RUNTIME(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Interop, AsioDotnet,
                         ::testing::Values(csharp_runtime::mono, csharp_runtime::dotnet10),
                         runtime_param_name());

TEST_P(AsioDotnet, AsyncServerEchoesConcurrentDotnetAsyncClients) {
    auto name = unique_pipe_name("dn-async");
    ::asio::io_context io;
    // At most 8 clients at once: the other 16 .NET clients wait in the backlog, then get in.
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out, 8);
    ::asio::co_spawn(io, serve(acceptor), ::asio::detached);
    std::thread runner([&] { io.run(); });
    auto result =
        run(csharp_command(GetParam(), "AsyncEchoClients", {name, "24", "200000"}), {}, 60s);
    ::asio::post(io, [&] { acceptor.close(); });
    runner.join();
    EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
    EXPECT_EQ(result.out, "ok 24\n") << result.err;
}

TEST_P(AsioDotnet, AsyncClientWaitsForADotnetServerAndTalksToIt) {
    auto name = unique_pipe_name("dn-srv");
    ::asio::io_context io;
    const std::string payload = pattern(1 << 20, 7);
    std::string back;
    std::error_code failure;
    ::asio::co_spawn(
        io,
        [&]() -> ::asio::awaitable<void> {
            na::named_pipe_client client(co_await ::asio::this_coro::executor, name);
            // The .NET server starts after the client: the connect waits for it.
            auto [ec] = co_await client.async_connect(30s, as_tuple);
            if ((failure = ec))
                co_return;
            // Send everything, then read the echo to the end of the stream, at once: the
            // server echoes while we write, so neither side's buffers may fill up.
            ::asio::co_spawn(
                client.get_executor(),
                [&]() -> ::asio::awaitable<void> {
                    co_await ::asio::async_write(client, ::asio::buffer(payload),
                                                 ::asio::use_awaitable);
                    client.shutdown_write();
                },
                ::asio::detached);
            auto [rec, n] =
                co_await ::asio::async_read(client, ::asio::dynamic_buffer(back), as_tuple);
            if (rec != ::asio::error::eof)
                failure = rec;
        },
        ::asio::detached);
    std::thread runner([&] { io.run(); });
    child server(
        csharp_command(GetParam(), "BulkPeer", {"server", name, "echo", "--timeout", "30000"}));
    runner.join();
    EXPECT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_FALSE(failure) << failure.message();
    EXPECT_EQ(back.size(), payload.size());
    EXPECT_TRUE(back == payload);
    EXPECT_EQ(server.out(), "echoed " + std::to_string(payload.size()) + "\n") << server.err();
}

}  // namespace
