// The seed article's client in C++: connect, print the server's byte, answer 2.
#include <npipe/npipe.hpp>

#include <chrono>
#include <iostream>

int main() {
    npipe::named_pipe_client client("test-pipe");
    client.connect(
        std::chrono::seconds(5));  // throws npipe::pipe_error (errc::timed_out) after 5 s
    std::cout << client.read_byte() << '\n';
    client.write_byte(2);
}
