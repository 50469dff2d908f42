// A consumer of npipe::remote: the gateway and the remote client's options, compiled, linked
// and run against the installed package (no network: the gateway refuses its options).
#include <npipe/errors.hpp>
#include <npipe/gateway.hpp>
#include <npipe/named_pipe_client.hpp>
#include <npipe/remote_options.hpp>

#include <iostream>

int main() {
    npipe::enable_remote_pipes();
    auto tls = std::make_shared<npipe::remote_options>();
    tls->token = "secret";
    npipe::pipe_options options;
    options.remote = tls;
    npipe::named_pipe_client client("gateway.invalid:4477", "consumer",
                                    npipe::pipe_direction::in_out, options);
    std::cout << client.socket_path() << '\n';
    try {
        npipe::gateway gateway(npipe::gateway_options{});  // no client authentication: refused
    } catch (const npipe::pipe_error& e) {
        std::cout << (e.code() == npipe::errc::invalid_argument ? "refused" : e.what()) << '\n';
    }
}
