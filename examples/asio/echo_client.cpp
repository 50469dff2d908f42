// The echo server's client, on C++20 coroutines: sends each argument (or "hello") and prints
// what comes back. Waits up to 5 s for the server to appear.
// Usage: example_asio_echo_client [NAME [TEXT...]]
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "npipe/asio/named_pipe_client.hpp"

asio::awaitable<void> talk(std::string name, std::vector<std::string> texts) {
    npipe::asio::named_pipe_client pipe(co_await asio::this_coro::executor, name);
    co_await pipe.async_connect(std::chrono::seconds(5), asio::use_awaitable);
    for (const auto& text : texts) {
        co_await asio::async_write(pipe, asio::buffer(text), asio::use_awaitable);
        std::string back(text.size(), '\0');
        co_await asio::async_read(pipe, asio::buffer(back), asio::use_awaitable);
        std::cout << back << std::endl;
    }
}

int main(int argc, char** argv) {
    std::string name = argc > 1 ? argv[1] : "echo";
    std::vector<std::string> texts(argv + std::min(argc, 2), argv + argc);
    if (texts.empty())
        texts.push_back("hello");
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, talk(name, texts), [&](std::exception_ptr e) {
        try {
            if (e)
                std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::cerr << "echo client: " << x.what() << '\n';  // e.g. "timed out"
            status = 1;
        }
    });
    io.run();
    return status;
}
