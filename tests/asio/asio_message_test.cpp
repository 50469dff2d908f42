// npipe::asio message pipes.
#include "asio/asio_test_support.hpp"

using namespace npipe_asio_test;

namespace {

// ---------------------------------------------------------------------------------------------
// Message pipes.

TEST(AsioMessage, WholeMessagesOfEverySize) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    EXPECT_EQ(p.server->transmission_mode(), npipe::transmission_mode::message);
    EXPECT_EQ(p.client->transmission_mode(), npipe::transmission_mode::message);
    EXPECT_EQ(p.server->read_mode(), npipe::transmission_mode::message);
    EXPECT_EQ(p.client->read_mode(), npipe::transmission_mode::byte);
    std::vector<std::string> sent = {"", "a", npipe::test::pattern(70000, 2),
                                     npipe::test::pattern(3 << 20, 3), "last"};
    std::vector<std::string> got;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (auto& m : sent)
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        // Several buffers make one message.
        std::array<::asio::const_buffer, 6> parts{::asio::buffer("ab", 2), ::asio::buffer("", 0),
                                                  ::asio::buffer("cd", 2), ::asio::buffer("ef", 2),
                                                  ::asio::buffer("gh", 2), ::asio::buffer("ij", 2)};
        co_await p.client->async_write_message(parts, use_awaitable);
        p.client->close();
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (;;) {
            std::string m;
            auto [ec, n] =
                co_await p.server->async_read_message(::asio::dynamic_buffer(m), as_tuple);
            if (ec == ::asio::error::eof)
                break;
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(n, m.size());
            got.push_back(m);
        }
        EXPECT_TRUE(p.server->end_of_stream());
    });
    run(io);
    sent.push_back("abcdefghij");
    EXPECT_EQ(got, sent);
}

TEST(AsioMessage, MessageOperationsWithFuturesDeferredAndWait) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    // Futures: the operations start here, a thread runs the context.
    std::array<char, 16> fixed;
    auto wrote = p.client->async_write_message(::asio::buffer(std::string_view("via future")),
                                               ::asio::use_future);
    auto read = p.server->async_read_message(::asio::buffer(fixed), ::asio::use_future);
    std::thread runner([&] { io.run(); });
    EXPECT_EQ(wrote.get(), 10u);
    EXPECT_EQ(read.get(), 10u);
    runner.join();
    EXPECT_EQ(std::string(fixed.data(), 10), "via future");
    // Deferred: nothing happens until the operations are given handlers.
    std::string got;
    auto deferred_write =
        p.server->async_write_message(::asio::buffer(std::string_view("via deferred")), deferred);
    auto deferred_read = p.client->async_read_message(::asio::dynamic_buffer(got), deferred);
    bool waited = false;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await p.client->async_wait(::asio::socket_base::wait_read, use_awaitable);
        waited = true;
    });
    std::move(deferred_read)([](std::error_code ec, std::size_t n) {
        EXPECT_FALSE(ec);
        EXPECT_EQ(n, 12u);
    });
    std::move(deferred_write)([](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
    run(io);
    EXPECT_EQ(got, "via deferred");
    EXPECT_TRUE(waited);
}

TEST(AsioMessage, TooLargeForTheBufferIsSkipped) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    std::vector<std::string> results;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (std::string m : {"small", "this one is too long", "fits"})
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        p.client->close();
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (;;) {
            std::array<char, 8> buffer;
            auto [ec, n] = co_await p.server->async_read_message(::asio::buffer(buffer), as_tuple);
            if (ec == ::asio::error::eof)
                break;
            results.push_back(ec ? "error:" + ec.message() : std::string(buffer.data(), n));
        }
    });
    run(io);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0], "small");
    EXPECT_EQ(results[1], "error:" + std::error_code(errc::message_too_large).message());
    EXPECT_EQ(results[2], "fits");
}

TEST(AsioMessage, ReadSomeInMessageAndByteReadMode) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    std::vector<std::pair<std::string, bool>> parts;
    std::string stream;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (std::string m : {"0123456789", "ab"})
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        // Message read mode: a read never crosses a message boundary.
        std::array<char, 4> buffer;
        while (parts.size() < 4) {
            auto n = co_await p.server->async_read_some(::asio::buffer(buffer), use_awaitable);
            parts.emplace_back(std::string(buffer.data(), n), p.server->is_message_complete());
        }
        // Byte read mode: payload bytes as a stream.
        p.server->set_read_mode(npipe::transmission_mode::byte);
        for (std::string m : {"xy", "z"})
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        p.client->close();
        auto [ec, n] =
            co_await ::asio::async_read(*p.server, ::asio::dynamic_buffer(stream), as_tuple);
        EXPECT_EQ(ec, ::asio::error::eof);
    });
    run(io);
    std::vector<std::pair<std::string, bool>> expected = {
        {"0123", false}, {"4567", false}, {"89", true}, {"ab", true}};
    EXPECT_EQ(parts, expected);
    EXPECT_EQ(stream, "xyz");
    auto bytes = make_pair(io);
    EXPECT_THROW(bytes.server->set_read_mode(npipe::transmission_mode::message), npipe::pipe_error);
    na::named_pipe_client unconnected(io, unique_pipe_name());
    EXPECT_THROW(unconnected.set_read_mode(npipe::transmission_mode::message), npipe::pipe_error);
    EXPECT_THROW(unconnected.transmission_mode(), npipe::pipe_error);
}

TEST(AsioMessage, LimitsAndByteMismatch) {
    ::asio::io_context io;
    auto name = unique_pipe_name("lim");
    npipe::pipe_options options;
    options.max_message_size = 100;
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out,
                                     npipe::max_allowed_server_instances,
                                     npipe::transmission_mode::message, options);
    na::named_pipe_client client(io, name, npipe::pipe_direction::in_out, options);
    std::error_code too_big_write, too_big_read, byte_read, byte_write;
    std::string after;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        std::string m;
        auto [ec, n] = co_await pipe.async_read_message(::asio::dynamic_buffer(m, 10), as_tuple);
        too_big_read = ec;
        EXPECT_TRUE(m.empty());
        co_await pipe.async_read_message(::asio::dynamic_buffer(after), use_awaitable);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await client.async_connect(use_awaitable);
        std::string big(101, 'b');
        auto [ec, n] = co_await client.async_write_message(::asio::buffer(big), as_tuple);
        too_big_write = ec;
        co_await client.async_write_message(::asio::buffer(std::string(11, 'c')), use_awaitable);
        co_await client.async_write_message(::asio::buffer(std::string("next")), use_awaitable);
    });
    run(io);
    EXPECT_EQ(too_big_write, errc::message_too_large);
    EXPECT_EQ(too_big_read, errc::message_too_large);
    EXPECT_EQ(after, "next");

    auto bytes = make_pair(io);
    std::string storage;
    bytes.server->async_read_message(::asio::dynamic_buffer(storage),
                                     [&](std::error_code ec, std::size_t) { byte_read = ec; });
    bytes.server->async_write_message(::asio::buffer(storage),
                                      [&](std::error_code ec, std::size_t) { byte_write = ec; });
    run(io);
    EXPECT_EQ(byte_read, errc::not_supported);
    EXPECT_EQ(byte_write, errc::not_supported);
}

TEST(AsioMessage, CancelledWholeReadDiscardsOnlyItsMessage) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    // The first frames of a large message arrive, then the read is cancelled while it waits
    // for the rest: that message is given up, the next one arrives intact.
    int fd = p.client->native_handle();
    auto frame = [&](const std::string& payload, bool more) {
        std::uint32_t h = std::uint32_t(payload.size()) | (more ? 0x80000000u : 0u);
        std::string record(4, '\0');
        for (int i = 0; i < 4; ++i)
            record[i] = char((h >> (8 * i)) & 0xff);
        record += payload;
        ASSERT_EQ(::send(fd, record.data(), record.size(), MSG_NOSIGNAL), ssize_t(record.size()));
    };
    frame("first part ", true);
    std::string got;
    std::error_code first;
    ::asio::cancellation_signal signal;
    p.server->async_read_message(
        ::asio::dynamic_buffer(got),
        ::asio::bind_cancellation_slot(signal.slot(),
                                       [&](std::error_code ec, std::size_t) { first = ec; }));
    // The first frame was consumed when the read started; it now waits for the rest.
    signal.emit(::asio::cancellation_type::terminal);
    run(io);
    EXPECT_EQ(first, ::asio::error::operation_aborted);
    EXPECT_TRUE(got.empty());
    frame("rest of the abandoned message", false);
    frame("whole", false);
    p.server->async_read_message(::asio::dynamic_buffer(got),
                                 [&](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
    run(io);
    EXPECT_EQ(got, "whole");
}

}  // namespace
