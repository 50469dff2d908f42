// A JSON-RPC client in C++ calling a C# StreamJsonRpc server (examples/rpc/dotnet):
//   example_rpc_calc_client NAME
// Prints "2 + 3 = 5", then the server's error for a division by zero.
#include <npipe/named_pipe_client.hpp>
#include <npipe/rpc/rpc.hpp>

#include <chrono>
#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: example_rpc_calc_client NAME\n";
        return 2;
    }
    npipe::named_pipe_client pipe(argv[1]);
    pipe.connect(std::chrono::seconds(30));
    npipe::rpc::connection rpc(pipe);
    rpc.start();
    std::cout << "2 + 3 = " << rpc.call_as<int>("add", {2, 3}) << std::endl;
    try {
        rpc.call("divide", {{"a", 1}, {"b", 0}});  // by name
    } catch (const npipe::rpc::rpc_error& e) {
        std::cout << "error " << e.code() << ": " << e.message() << std::endl;
    }
}
