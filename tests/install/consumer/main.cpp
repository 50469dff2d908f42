#include <npipe/npipe.hpp>

#include <iostream>

int main() {
    std::cout << npipe::pipe_path("consumer") << '\n';
}
