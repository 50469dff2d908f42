// An echo server on C++20 coroutines: every client's bytes go straight back to it. Any number
// of clients, all on one thread; .NET and Mono clients (NamedPipeClientStream) work too.
// Stops on Ctrl-C. Usage: example_asio_echo_server [NAME]
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <iostream>
#include <string>

#include "npipe/asio/named_pipe_acceptor.hpp"

asio::awaitable<void> echo(npipe::asio::pipe_stream pipe) {
    try {
        char data[4096];
        for (;;) {
            std::size_t n = co_await pipe.async_read_some(asio::buffer(data), asio::use_awaitable);
            co_await asio::async_write(pipe, asio::buffer(data, n), asio::use_awaitable);
        }
    } catch (const std::system_error& e) {
        if (e.code() != asio::error::eof)  // eof: the client closed, which is how it ends
            std::cerr << "client: " << e.what() << '\n';
    }
}

asio::awaitable<void> accept_clients(npipe::asio::named_pipe_acceptor& acceptor) {
    for (;;) {
        npipe::asio::pipe_stream pipe = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), echo(std::move(pipe)), asio::detached);
    }
}

int main(int argc, char** argv) {
    std::string name = argc > 1 ? argv[1] : "echo";
    asio::io_context io;
    npipe::asio::named_pipe_acceptor acceptor(io, name);
    asio::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&](std::error_code, int) { io.stop(); });
    asio::co_spawn(io, accept_clients(acceptor), asio::detached);
    std::cout << "echo server on " << acceptor.socket_path() << std::endl;
    io.run();
}
