// npipe::asio cancellation and timeouts (including cancel racing completion), destruction
// with operations pending.
#include "asio/asio_test_support.hpp"

using namespace npipe_asio_test;

namespace {

// ---------------------------------------------------------------------------------------------
// Cancellation and timeouts.

TEST(AsioCancel, PerOperationSlotCancelsAReadAndThePipeStaysUsable) {
    for (auto type : {::asio::cancellation_type::terminal, ::asio::cancellation_type::partial,
                      ::asio::cancellation_type::total}) {
        ::asio::io_context io;
        auto p = make_pair(io);
        ::asio::cancellation_signal signal;
        std::vector<char> buffer(8);
        std::error_code result;
        p.server->async_read_some(
            ::asio::buffer(buffer),
            ::asio::bind_cancellation_slot(signal.slot(),
                                           [&](std::error_code ec, std::size_t) { result = ec; }));
        ::asio::post(io, [&] { signal.emit(type); });
        run(io);
        EXPECT_EQ(result, ::asio::error::operation_aborted);
        std::string got;
        ::asio::async_write(*p.client, ::asio::buffer(std::string_view("still")),
                            [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        ::asio::async_read(*p.server, ::asio::buffer(buffer, 5),
                           [&](std::error_code ec, std::size_t n) {
                               EXPECT_FALSE(ec);
                               got = text(buffer, n);
                           });
        run(io);
        EXPECT_EQ(got, "still");
    }
}

TEST(AsioCancel, AwaitableOrWithATimerAndWithTimeout) {
    using namespace ::asio::experimental::awaitable_operators;
    ::asio::io_context io;
    auto p = make_pair(io);
    bool timer_won = false;
    std::error_code timed_out;
    std::string after;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        std::vector<char> buffer(16);
        ::asio::steady_timer timer(co_await ::asio::this_coro::executor, 50ms);
        auto winner = co_await (p.server->async_read_some(::asio::buffer(buffer), use_awaitable) ||
                                timer.async_wait(use_awaitable));
        timer_won = winner.index() == 1;
        auto [ec, n] = co_await na::async_with_timeout(
            p.server->get_executor(), 50ms,
            [&](auto token) { return p.server->async_read_some(::asio::buffer(buffer), token); },
            as_tuple);
        timed_out = ec;
        // Still usable: the next read gets what the client sends.
        co_await ::asio::async_write(*p.client, ::asio::buffer(std::string_view("ok")),
                                     use_awaitable);
        n = co_await na::async_with_timeout(
            p.server->get_executor(), 5s,
            [&](auto token) { return p.server->async_read_some(::asio::buffer(buffer), token); },
            use_awaitable);
        after = text(buffer, n);
    });
    run(io);
    EXPECT_TRUE(timer_won);
    EXPECT_EQ(timed_out, errc::timed_out);
    EXPECT_EQ(after, "ok");
}

TEST(AsioCancel, CancelAndCloseCompletePendingOperations) {
    ::asio::io_context io;
    auto p = make_pair(io);
    std::vector<char> buffer(8);
    std::error_code read_ec, wait_ec;
    p.server->async_read_some(::asio::buffer(buffer),
                              [&](std::error_code ec, std::size_t) { read_ec = ec; });
    ::asio::post(io, [&] { p.server->cancel(); });
    run(io);
    EXPECT_EQ(read_ec, ::asio::error::operation_aborted);
    EXPECT_TRUE(p.server->is_open());

    p.server->async_wait(::asio::socket_base::wait_read, [&](std::error_code ec) { wait_ec = ec; });
    ::asio::post(io, [&] { p.server->close(); });
    run(io);
    EXPECT_EQ(wait_ec, ::asio::error::operation_aborted);
    EXPECT_FALSE(p.server->is_open());

    // A connect waiting for a server that never comes, cancelled and closed.
    na::named_pipe_client waiting(io, unique_pipe_name("never"));
    std::error_code connect_ec;
    waiting.async_connect([&](std::error_code ec) { connect_ec = ec; });
    ::asio::steady_timer t(io, 30ms);
    t.async_wait([&](std::error_code) { waiting.cancel(); });
    run(io);
    EXPECT_EQ(connect_ec, ::asio::error::operation_aborted);

    std::error_code accept_ec;
    p.acceptor->async_accept([&](std::error_code ec, na::pipe_stream) { accept_ec = ec; });
    ::asio::post(io, [&] { p.acceptor->cancel(); });
    run(io);
    EXPECT_EQ(accept_ec, ::asio::error::operation_aborted);
    EXPECT_TRUE(p.acceptor->is_open());
}

// cancel() issued after the reactor has seen the data but before the read's handler has run
// (or before, or after it): the read completes exactly once, with the message or aborted, and an
// aborted read leaves the message in the pipe for the next one.
TEST(AsioCancel, CancelRacingCompletionLosesNothing) {
    for (auto mode : {npipe::transmission_mode::byte, npipe::transmission_mode::message}) {
        const bool message = mode == npipe::transmission_mode::message;
        ::asio::io_context io;
        auto p = make_pair(io, mode);
        int aborted = 0;
        for (int round = 0; round < 200; ++round) {
            std::string msg = "m" + std::to_string(round);
            std::vector<char> buffer(32);
            int calls = 0;
            std::error_code result;
            std::size_t got = 0;
            auto start_read = [&] {
                auto on_read = [&](std::error_code ec, std::size_t n) {
                    ++calls;
                    result = ec;
                    got = n;
                };
                if (message)
                    p.server->async_read_message(::asio::buffer(buffer), on_read);
                else
                    p.server->async_read_some(::asio::buffer(buffer), on_read);
            };
            auto send = [&] {
                auto done = [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); };
                if (message)
                    p.client->async_write_message(::asio::buffer(msg), done);
                else
                    ::asio::async_write(*p.client, ::asio::buffer(msg), done);
            };
            start_read();
            // The order in which the data, the cancel and the handlers meet varies by round.
            if (round % 2)
                send();
            for (int i = 0; i < round % 5; ++i)
                io.poll_one();
            ::asio::post(io, [&] { p.server->cancel(); });
            if (round % 2 == 0)
                send();
            run(io);
            ASSERT_EQ(calls, 1) << "round " << round;
            if (result) {
                ASSERT_EQ(result, ::asio::error::operation_aborted) << result.message();
                ++aborted;
                calls = 0;
                start_read();
                run(io);
                ASSERT_EQ(calls, 1);
                ASSERT_FALSE(result) << result.message();
            }
            ASSERT_EQ(text(buffer, got), msg) << "round " << round;
        }
        EXPECT_GT(aborted, 0);
    }
}

// The exact race: the reactor has seen the pipe readable and completed the read's internal wait
// with success, and a handler that runs just before the read's own handler cancels the read.
// An async_wait on the same pipe, registered first, completes in the same reactor pass and runs
// first (Asio runs the first completed operation of a descriptor at once and posts the others).
// The read must complete with operation_aborted without taking the message, which the next read
// then gets.
TEST(AsioCancel, CancelAfterTheWaitCompletedButBeforeItsHandlerRan) {
    for (bool by_slot : {false, true}) {
        ::asio::io_context io;
        auto p = make_pair(io, npipe::transmission_mode::message);
        ::asio::cancellation_signal signal;
        std::string got;
        std::error_code result;
        int calls = 0;
        p.server->async_wait(::asio::socket_base::wait_read, [&](std::error_code ec) {
            ASSERT_FALSE(ec);
            if (by_slot)
                signal.emit(::asio::cancellation_type::terminal);
            else
                p.server->cancel();
        });
        p.server->async_read_message(
            ::asio::dynamic_buffer(got),
            ::asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::size_t) {
                ++calls;
                result = ec;
            }));
        // The message goes out inside this call (the write's first step runs at once).
        p.client->async_write_message(::asio::buffer(std::string_view("kept")),
                                      [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        run(io);
        EXPECT_EQ(calls, 1);
        EXPECT_EQ(result, ::asio::error::operation_aborted) << "by_slot " << by_slot;
        EXPECT_TRUE(got.empty());
        p.server->async_read_message(::asio::dynamic_buffer(got),
                                     [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        run(io);
        EXPECT_EQ(got, "kept");
    }
}

// ---------------------------------------------------------------------------------------------
// Destruction with operations pending: operation_aborted, never a crash or a hang.

TEST(AsioDestroy, PendingOperationsCompleteWithOperationAborted) {
    ::asio::io_context io;
    auto name = unique_pipe_name("destroy");
    std::error_code accept_ec, read_ec, write_ec, connect_ec, message_ec;
    {
        auto acceptor = std::make_unique<na::named_pipe_acceptor>(io, name);
        acceptor->async_accept([&](std::error_code ec, na::pipe_stream) { accept_ec = ec; });
        ::asio::post(io, [&] { acceptor.reset(); });
        run(io);
    }
    EXPECT_EQ(accept_ec, ::asio::error::operation_aborted);
    {
        auto p = make_pair(io);
        std::vector<char> buffer(8);
        p.server->async_read_some(::asio::buffer(buffer),
                                  [&](std::error_code ec, std::size_t) { read_ec = ec; });
        // A write that cannot finish: the socket's buffer is full and the client does not read.
        std::string chunk(65536, 'x');
        while (::send(p.server->native_handle(), chunk.data(), chunk.size(),
                      MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
        }
        p.server->async_write_some(::asio::buffer(chunk),
                                   [&](std::error_code ec, std::size_t) { write_ec = ec; });
        ::asio::post(io, [&] { p.server.reset(); });
        run(io);
    }
    EXPECT_EQ(read_ec, ::asio::error::operation_aborted);
    EXPECT_EQ(write_ec, ::asio::error::operation_aborted);
    {
        auto client = std::make_unique<na::named_pipe_client>(io, unique_pipe_name("gone"));
        client->async_connect([&](std::error_code ec) { connect_ec = ec; });
        ::asio::steady_timer t(io, 20ms);
        t.async_wait([&](std::error_code) { client.reset(); });
        run(io);
    }
    EXPECT_EQ(connect_ec, ::asio::error::operation_aborted);
    {
        auto p = make_pair(io, npipe::transmission_mode::message);
        std::string storage;
        p.client->async_read_message(::asio::dynamic_buffer(storage),
                                     [&](std::error_code ec, std::size_t) { message_ec = ec; });
        ::asio::post(io, [&] { p.client.reset(); });
        run(io);
    }
    EXPECT_EQ(message_ec, ::asio::error::operation_aborted);

    // Destroying the io_context with operations pending destroys their handlers, no more.
    auto ctx = std::make_unique<::asio::io_context>();
    auto p = make_pair(*ctx);
    std::vector<char> buffer(8);
    p.server->async_read_some(::asio::buffer(buffer), [](std::error_code, std::size_t) {});
    p.acceptor->async_accept([](std::error_code, na::pipe_stream) {});
    p = {};
    ctx.reset();
}

}  // namespace
