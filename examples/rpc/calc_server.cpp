// A JSON-RPC server in C++ that a C# StreamJsonRpc client calls (examples/rpc/dotnet):
//   example_rpc_calc_server NAME      serves one client on pipe NAME, then exits
// Methods: add(a, b) and divide(a, b), whose division by zero is an error with data.
#include <npipe/named_pipe_server.hpp>
#include <npipe/rpc/rpc.hpp>

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: example_rpc_calc_server NAME\n";
        return 2;
    }
    npipe::named_pipe_server pipe(argv[1]);
    std::cout << "listening" << std::endl;
    pipe.wait_for_connection();
    npipe::rpc::connection rpc(pipe);  // header framing: JsonRpc.Attach(stream)'s
    rpc.add_method("add", [](int a, int b) { return a + b; }, {"a", "b"});
    rpc.add_method("divide",
                   [](double a, double b) {
                       if (b == 0)
                           throw npipe::rpc::rpc_error(1001, "division by zero", {{"dividend", a}});
                       return a / b;
                   },
                   {"a", "b"});
    rpc.start();
    rpc.wait();  // until the client leaves
}
