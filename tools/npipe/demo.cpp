// `npipe demo`: the seed article's exchange. The server sends the byte 1 and prints the client's
// answer; the client prints the server's byte and answers 2. Either end can be a .NET program.
#include <chrono>
#include <iostream>

#include "cleanup.hpp"
#include "commands.hpp"
#include "flags.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"

namespace npipe::cli {

void add_demo_command(CLI::App& app) {
    auto* demo =
        app.add_subcommand("demo", "The seed exchange: the server sends 1, the client answers 2");
    demo->require_subcommand(1);
    demo->footer(R"(Examples:
  npipe demo server &             prints 2 once a client answered
  npipe demo client               prints 1 (either side may be the seed article's C# program))");

    static std::string server_name = "test-pipe";
    auto* server =
        demo->add_subcommand("server", "Wait for a client, send 1, print the byte it answers");
    server->add_option("NAME", server_name, "Pipe name")->capture_default_str();
    server->callback([] {
        stop_signals_held hold;
        named_pipe_server pipe(server_name);
        remove_on_signal cleanup(pipe.socket_path());
        hold.release();
        pipe.wait_for_connection();
        pipe.write_byte(1);
        int answer = pipe.read_byte();
        if (answer < 0)
            throw exit_request{
                1, "pipe '" + server_name + "': the client closed the pipe without answering"};
        std::cout << answer << std::endl;
    });

    static std::string client_name = "test-pipe";
    static std::chrono::milliseconds timeout{-1};
    auto* client = demo->add_subcommand("client", "Connect, print the server's byte, answer 2");
    client->add_option("NAME", client_name, "Pipe name")->capture_default_str();
    add_duration_option(client, "--timeout", timeout, bare_unit::milliseconds,
                        "Give up connecting after this long (default: wait)");
    client->callback([] {
        named_pipe_client pipe(client_name);
        pipe.connect(timeout);
        int value = pipe.read_byte();
        if (value < 0)
            throw exit_request{
                1, "pipe '" + client_name + "': the server closed the pipe without sending"};
        std::cout << value << std::endl;
        pipe.write_byte(2);
    });
}

}  // namespace npipe::cli
