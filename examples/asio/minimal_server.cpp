// clang-format off
#include <asio.hpp>
#include <npipe/asio/named_pipe_acceptor.hpp>
using namespace asio;
awaitable<void> echo(npipe::asio::pipe_stream pipe) {  // one coroutine per client
    for (char data[4096];;) {
        std::size_t n = co_await pipe.async_read_some(buffer(data), use_awaitable);
        co_await async_write(pipe, buffer(data, n), use_awaitable);
    }
}
awaitable<void> serve(npipe::asio::named_pipe_acceptor acceptor) {  // any number of clients
    for (;;) co_spawn(acceptor.get_executor(), echo(co_await acceptor.async_accept(use_awaitable)), detached);
}
int main() {  // all on one thread; a .NET client: new NamedPipeClientStream("echo")
    io_context io; co_spawn(io, serve(npipe::asio::named_pipe_acceptor(io, "echo")), detached); io.run();
}
