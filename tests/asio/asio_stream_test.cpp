// npipe::asio pipes: every operation with every kind of completion token, end of stream,
// direction.
#include "asio/asio_test_support.hpp"

using namespace npipe_asio_test;

namespace {

// ---------------------------------------------------------------------------------------------
// Each operation with each completion token.

TEST(AsioPipe, CallbacksAcceptConnectWriteRead) {
    ::asio::io_context io;
    auto name = unique_pipe_name("cb");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client client(io, name);
    std::optional<na::pipe_stream> server;
    std::vector<char> buffer(64);
    std::string got;
    bool wrote = false;

    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_TRUE(p.is_open());
        EXPECT_EQ(p.transmission_mode(), npipe::transmission_mode::byte);
        EXPECT_EQ(p.pipe_name(), name);
        server.emplace(std::move(p));
        server->async_read_some(::asio::buffer(buffer), [&](std::error_code ec, std::size_t n) {
            ASSERT_FALSE(ec) << ec.message();
            got = text(buffer, n);
        });
    });
    client.async_connect([&](std::error_code ec) {
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_EQ(client.transmission_mode(), npipe::transmission_mode::byte);
        client.async_write_some(::asio::buffer(std::string_view("hello")),
                                [&](std::error_code ec, std::size_t n) {
                                    ASSERT_FALSE(ec) << ec.message();
                                    EXPECT_EQ(n, 5u);
                                    wrote = true;
                                });
    });
    run(io);
    EXPECT_TRUE(wrote);
    EXPECT_EQ(got, "hello");
    EXPECT_EQ(client.get_peer_credentials().pid, ::getpid());
}

TEST(AsioPipe, CoroutinesWithComposedReadWriteAndReadUntil) {
    ::asio::io_context io;
    auto name = unique_pipe_name("co");
    na::named_pipe_acceptor acceptor(io, name);
    std::string line, rest;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        std::string data;
        std::size_t n = co_await ::asio::async_read_until(pipe, ::asio::dynamic_buffer(data), '\n',
                                                          use_awaitable);
        line = data.substr(0, n);
        data.erase(0, n);
        std::vector<char> tail(6 - data.size());
        co_await ::asio::async_read(pipe, ::asio::buffer(tail), use_awaitable);
        rest = data + std::string(tail.begin(), tail.end());
        co_await ::asio::async_write(pipe, ::asio::buffer(std::string_view("bye")), use_awaitable);
    });
    std::string reply;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        na::named_pipe_client client(co_await ::asio::this_coro::executor, name);
        co_await client.async_connect(use_awaitable);
        co_await ::asio::async_write(client, ::asio::buffer(std::string_view("first line\nsecond")),
                                     use_awaitable);
        std::string data;
        auto [ec, n] = co_await ::asio::async_read(client, ::asio::dynamic_buffer(data), as_tuple);
        EXPECT_EQ(ec, ::asio::error::eof);  // the server closed after "bye"
        reply = data;
    });
    run(io);
    EXPECT_EQ(line, "first line\n");
    EXPECT_EQ(rest, "second");
    EXPECT_EQ(reply, "bye");
}

TEST(AsioPipe, FuturesWithTheContextOnAnotherThread) {
    ::asio::io_context io;
    auto name = unique_pipe_name("fut");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client client(io, name);
    // Operations start here, then a thread runs the context while this one waits on futures
    // (the objects are not touched meanwhile: they are not thread-safe).
    auto in_thread = [&] {
        io.restart();
        return std::thread([&] { io.run(); });
    };
    auto accepted = acceptor.async_accept(::asio::use_future);
    auto connected = client.async_connect(::asio::use_future);
    auto runner = in_thread();
    connected.get();
    na::pipe_stream server = accepted.get();
    runner.join();

    std::vector<char> buffer(16);
    auto wrote =
        client.async_write_some(::asio::buffer(std::string_view("future")), ::asio::use_future);
    auto read = ::asio::async_read(server, ::asio::buffer(buffer, 6), ::asio::use_future);
    runner = in_thread();
    EXPECT_EQ(wrote.get(), 6u);
    EXPECT_EQ(read.get(), 6u);
    runner.join();
    EXPECT_EQ(text(buffer, 6), "future");

    // An error arrives as the future's exception.
    client.close();
    auto failed =
        client.async_write_some(::asio::buffer(std::string_view("x")), ::asio::use_future);
    auto message = server.async_read_message(::asio::buffer(buffer), ::asio::use_future);
    runner = in_thread();
    try {
        failed.get();
        ADD_FAILURE() << "write on a closed pipe succeeded";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), errc::not_connected);
    }
    EXPECT_THROW(message.get(), std::system_error);  // a byte pipe has no messages
    runner.join();
}

TEST(AsioPipe, DeferredOperationsRunWhenInvoked) {
    ::asio::io_context io;
    auto name = unique_pipe_name("def");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client client(io, name);
    auto accept = acceptor.async_accept(deferred);
    auto connect = client.async_connect(deferred);
    std::optional<na::pipe_stream> server;
    std::string got;
    // Nothing has started yet: the deferred operations run when given a handler.
    std::move(accept)([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        server.emplace(std::move(p));
    });
    std::move(connect)([&](std::error_code ec) { ASSERT_FALSE(ec) << ec.message(); });
    run(io);
    ASSERT_TRUE(server);
    std::vector<char> buffer(8);
    auto write = client.async_write_some(::asio::buffer(std::string_view("later")), deferred);
    auto read = server->async_read_some(::asio::buffer(buffer), deferred);
    std::move(read)([&](std::error_code ec, std::size_t n) {
        ASSERT_FALSE(ec);
        got = text(buffer, n);
    });
    std::move(write)([](std::error_code ec, std::size_t) { ASSERT_FALSE(ec); });
    bool waited = false;
    client.async_wait(::asio::socket_base::wait_write, deferred)([&](std::error_code ec) {
        EXPECT_FALSE(ec);
        waited = true;
    });
    run(io);
    EXPECT_EQ(got, "later");
    EXPECT_TRUE(waited);
}

TEST(AsioPipe, HandlersNeverRunInsideTheInitiatingCall) {
    ::asio::io_context io;
    na::pipe_stream unconnected(io);
    bool inside = true;
    std::error_code result;
    std::vector<char> four(4);
    unconnected.async_read_some(::asio::buffer(four), [&](std::error_code ec, std::size_t) {
        EXPECT_FALSE(inside);
        result = ec;
    });
    inside = false;
    run(io);
    EXPECT_EQ(result, errc::not_connected);

    // Data already there: the read finishes without waiting, still through a post.
    auto name = unique_pipe_name("inl");
    na::named_pipe_acceptor acceptor(io, name);
    npipe::named_pipe_client sync_client(name);
    sync_client.connect(5s);
    sync_client.write("abc");
    std::optional<na::pipe_stream> server;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec);
        server.emplace(std::move(p));
    });
    run(io);
    ASSERT_TRUE(server);
    std::vector<char> buffer(3);
    inside = true;
    std::size_t got = 0;
    ::asio::async_read(*server, ::asio::buffer(buffer), [&](std::error_code ec, std::size_t n) {
        EXPECT_FALSE(inside);
        EXPECT_FALSE(ec);
        got = n;
    });
    inside = false;
    run(io);
    EXPECT_EQ(got, 3u);
}

TEST(AsioPipe, EndOfStreamAndBrokenPipe) {
    ::asio::io_context io;
    auto name = unique_pipe_name("eof");
    na::named_pipe_acceptor acceptor(io, name);
    std::error_code read_ec, write_ec, later_ec;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        std::vector<char> buffer(8);
        auto [ec, n] = co_await pipe.async_read_some(::asio::buffer(buffer), as_tuple);
        read_ec = ec;
        // The peer is gone: writes fail with broken_pipe (never SIGPIPE), and stay failed.
        std::string big(1 << 20, 'x');
        auto [wec, wn] = co_await ::asio::async_write(pipe, ::asio::buffer(big), as_tuple);
        write_ec = wec;
        auto [lec, ln] =
            co_await pipe.async_write_some(::asio::buffer(std::string_view("y")), as_tuple);
        later_ec = lec;
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        na::named_pipe_client client(co_await ::asio::this_coro::executor, name);
        co_await client.async_connect(use_awaitable);
        client.close();
    });
    run(io);
    EXPECT_EQ(read_ec, ::asio::error::eof);
    EXPECT_EQ(write_ec, errc::broken_pipe);
    EXPECT_EQ(later_ec, errc::broken_pipe);
}

TEST(AsioPipe, DirectionAndShutdownWrite) {
    ::asio::io_context io;
    auto name = unique_pipe_name("dir");
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in);
    na::named_pipe_client client(io, name, npipe::pipe_direction::out);
    std::string got;
    std::error_code server_write, client_read;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        auto [wec, wn] =
            co_await pipe.async_write_some(::asio::buffer(std::string_view("no")), as_tuple);
        server_write = wec;
        auto [ec, n] = co_await ::asio::async_read(pipe, ::asio::dynamic_buffer(got), as_tuple);
        EXPECT_EQ(ec, ::asio::error::eof);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await client.async_connect(use_awaitable);
        std::vector<char> buffer(4);
        auto [ec, n] = co_await client.async_read_some(::asio::buffer(buffer), as_tuple);
        client_read = ec;
        co_await ::asio::async_write(client, ::asio::buffer(std::string_view("one way")),
                                     use_awaitable);
        client.shutdown_write();
    });
    run(io);
    EXPECT_EQ(server_write, errc::wrong_direction);
    EXPECT_EQ(client_read, errc::wrong_direction);
    EXPECT_EQ(got, "one way");
}

}  // namespace
