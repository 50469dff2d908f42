// The npipe CLI's subcommands. Each lives in its own file and registers itself on the app; the
// CLI is a thin layer over the public API, so any logic worth having belongs in the library.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "npipe/options.hpp"
#include "npipe/process.hpp"
#include "relay.hpp"

namespace npipe::cli {

void add_demo_command(CLI::App& app);     // demo.cpp: the seed's 1-and-2 exchange
void add_serve_command(CLI::App& app);    // serve.cpp: nc -l / inetd for pipes
void add_connect_command(CLI::App& app);  // connect.cpp: nc for pipes
void add_list_command(CLI::App& app);     // list.cpp: the pipes on this machine
void add_anon_command(CLI::App& app);     // anon.cpp: anonymous pipes to child processes
void add_chat_command(CLI::App& app);     // chat.cpp: message-mode chat (part 4)
void add_gateway_command(CLI::App& app);  // gateway.cpp: expose pipes over TLS (npipe::remote)
void add_bench_command(CLI::App& app);    // bench.cpp: latency, throughput, messages, connect
void add_rpc_command(CLI::App& app);      // rpc.cpp: JSON-RPC 2.0 call/notify/serve (npipe::rpc)

/// serve_echo.cpp: `npipe serve NAME --echo [--message]`, the async echo server on one thread,
/// until SIGINT/SIGTERM. `timeouts` drop a client that sends nothing for idle_timeout, or takes
/// none of its echo for write_timeout (zero: no limit); every dropped client is logged with the
/// reason on stderr, as is a message-mode client that breaks the framing or sends an oversize
/// message.
void run_echo_server(const std::string& name, bool message, int max_instances,
                     const pipe_options& options = {}, const relay_options& timeouts = {});

/// Starts a command for a subcommand (npipe::spawn); a failure to start becomes an
/// exit_request with a shell's status: 127 when the program is not found, 126 otherwise.
child_process spawn_command(const std::vector<std::string>& argv, process_options options);

/// Thrown by a subcommand to exit with `code` after printing `message` (if any) to stderr.
struct exit_request {
    int code;
    std::string message;
};

}  // namespace npipe::cli
