// The seed article's server in C++: wait for a client, send 1, print the byte it answers.
// Works with the article's C# client unmodified.
#include <npipe/npipe.hpp>

#include <iostream>

int main() {
    npipe::named_pipe_server server("test-pipe");
    server.wait_for_connection();
    server.write_byte(1);
    std::cout << server.read_byte() << '\n';
}
