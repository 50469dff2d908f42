// The asynchronous JSON-RPC client (npipe::rpc::async_connection, one coroutine on one
// io_context thread) calling a C# StreamJsonRpc server (examples/rpc/dotnet):
//   example_rpc_async_calc_client NAME
// Prints what example_rpc_calc_client prints: "2 + 3 = 5", then the server's error for a
// division by zero, here as an error code and the error object, without an exception.
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <npipe/asio/named_pipe_client.hpp>
#include <npipe/rpc/async_connection.hpp>

#include <chrono>
#include <iostream>

using npipe::rpc::json;

::asio::awaitable<void> run(::asio::io_context& io, std::string name) {
    npipe::asio::named_pipe_client pipe(io, name);
    co_await pipe.async_connect(std::chrono::seconds(30), ::asio::use_awaitable);
    npipe::rpc::async_connection rpc(std::move(pipe));  // header framing, as JsonRpc.Attach
    rpc.start();
    json two_three = json::array({2, 3});
    json sum = co_await rpc.async_call("add", two_three, ::asio::use_awaitable);
    std::cout << "2 + 3 = " << sum << std::endl;
    json by_name = json::object();
    by_name["a"] = 1;
    by_name["b"] = 0;
    auto [ec, error] = co_await rpc.async_call(
        "divide", by_name, ::asio::experimental::as_tuple(::asio::use_awaitable));
    if (ec)  // ec.value() is the JSON-RPC code; `error` the peer's error object
        std::cout << "error " << ec.value() << ": " << error["message"].get<std::string>()
                  << std::endl;
    rpc.close();
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: example_rpc_async_calc_client NAME\n";
        return 2;
    }
    ::asio::io_context io;
    int status = 0;
    ::asio::co_spawn(io, run(io, argv[1]), [&](std::exception_ptr e) {
        if (!e)
            return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::cerr << "example_rpc_async_calc_client: " << x.what() << "\n";
            status = 1;
        }
    });
    io.run();
    return status;
}
