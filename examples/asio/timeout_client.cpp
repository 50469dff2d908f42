// A client with a timeout and cancellation: waits at most 2 s for the server to appear, asks
// it a question, and waits at most 3 s for the answer; Ctrl-C cancels whatever it is waiting
// for. Shows the three ways: an operation's own timeout (async_connect), npipe's
// async_with_timeout for any operation, and a cancellation slot bound to an operation.
// Usage: example_asio_timeout_client [NAME [QUESTION]]
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <iostream>
#include <string>

#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/asio/timeout.hpp"
#include "npipe/errors.hpp"

using namespace std::chrono_literals;
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// 1. The operation's own timeout: npipe::errc::timed_out when no server appears in time.
//    Ctrl-C meanwhile cancels it through the slot bound to it (operation_aborted).
asio::awaitable<std::error_code> connect(npipe::asio::named_pipe_client& pipe,
                                         asio::cancellation_signal& stop) {
    auto [ec] =
        co_await pipe.async_connect(2s, asio::bind_cancellation_slot(stop.slot(), as_tuple));
    co_return ec;
}

// 2. Any operation with a deadline: the read is cancelled after 3 s and fails with timed_out;
//    the pipe stays usable, so we could ask again. Ctrl-C cancels the whole operation, read and
//    deadline both.
asio::awaitable<std::string> answer(npipe::asio::pipe_stream& pipe,
                                    asio::cancellation_signal& stop) {
    char data[4096];
    std::size_t n = co_await npipe::asio::async_with_timeout(
        pipe.get_executor(), 3s,
        [&](auto token) { return pipe.async_read_some(asio::buffer(data), token); },
        asio::bind_cancellation_slot(stop.slot(), asio::use_awaitable));
    co_return std::string(data, n);
}

// 3. The same race with awaitable operators: whichever finishes first cancels the other.
asio::awaitable<void> anything_more(npipe::asio::pipe_stream& pipe) {
    using namespace asio::experimental::awaitable_operators;
    char data[4096];
    asio::steady_timer grace(pipe.get_executor(), 100ms);
    auto first =
        co_await (pipe.async_read_some(asio::buffer(data), as_tuple) || grace.async_wait(as_tuple));
    if (first.index() == 1)
        std::cout << "(nothing more within 100 ms)" << std::endl;
}

asio::awaitable<int> ask(std::string name, std::string question, asio::cancellation_signal& stop) {
    npipe::asio::named_pipe_client pipe(co_await asio::this_coro::executor, name);
    if (auto ec = co_await connect(pipe, stop)) {
        std::cerr << (ec == npipe::errc::timed_out ? "no server '" + name + "' within 2 s"
                                                   : "connect: " + ec.message())
                  << '\n';
        co_return ec == npipe::errc::timed_out ? 2 : 1;
    }
    co_await asio::async_write(pipe, asio::buffer(question), asio::use_awaitable);
    try {
        std::cout << co_await answer(pipe, stop) << std::endl;
    } catch (const std::system_error& e) {
        if (e.code() == npipe::errc::timed_out)
            std::cerr << "no answer within 3 s\n";
        else if (e.code() == asio::error::operation_aborted)
            std::cerr << "cancelled\n";
        else
            std::cerr << "read: " << e.code().message() << '\n';
        co_return e.code() == npipe::errc::timed_out ? 3 : 1;
    }
    co_await anything_more(pipe);
    co_return 0;
}

int main(int argc, char** argv) {
    std::string name = argc > 1 ? argv[1] : "echo";
    std::string question = argc > 2 ? argv[2] : "are you there?";
    asio::io_context io;
    asio::cancellation_signal stop;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec)
            stop.emit(asio::cancellation_type::terminal);
    });
    int status = 1;
    asio::co_spawn(io, ask(name, question, stop), [&](std::exception_ptr e, int s) {
        status = e ? 1 : s;
        signals.cancel();
    });
    io.run();
    return status;
}
