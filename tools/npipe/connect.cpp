// `npipe connect NAME`: netcat's client for pipes.
#include <chrono>
#include <iostream>

#include "commands.hpp"
#include "npipe/named_pipe_client.hpp"
#include "relay.hpp"
#ifdef NPIPE_HAVE_REMOTE
#include "remote_flags.hpp"
#endif

namespace npipe::cli {

void add_connect_command(CLI::App& app) {
    static std::string name;
    static std::string server = ".";
    static int timeout_ms = -1;
    static bool current_user_only = false;
    static bool retry = false;
    auto* cmd = app.add_subcommand(
        "connect", "Connect to a pipe; copy stdin to it and it to stdout until both ends are done");
    cmd->add_option("NAME", name, "Pipe name (a simple name, or a socket path starting with /)")
        ->required();
    cmd->add_option("--server", server, "Server host ('.' is this machine)")->capture_default_str();
    cmd->add_option("--timeout", timeout_ms,
                    "Give up after MS milliseconds without a server (default: wait for one)");
    cmd->add_flag("--current-user-only", current_user_only, "Refuse a server run by another user");
    cmd->add_flag("--retry", retry,
                  "When the server goes away before our input ends, wait for it to come back "
                  "(a restarted server) and go on; input read but not yet sent is kept");
#ifdef NPIPE_HAVE_REMOTE
    static remote_client_flags remote;  // --server HOST[:PORT] --ca --cert --key --token-file
    add_remote_client_flags(cmd, remote);
#endif
    cmd->callback([] {
        pipe_options options;
        options.current_user_only = current_user_only;
#ifdef NPIPE_HAVE_REMOTE
        apply_remote_client_flags(remote, server, name, options);
#endif
        std::vector<std::byte> carry;
        for (;;) {
            named_pipe_client pipe(server, name, pipe_direction::in_out, options);
            pipe.connect(std::chrono::milliseconds(timeout_ms));
            auto outcome = relay(pipe, 0, 1, {}, &carry);
            if (!retry || outcome.finished) {
                if (outcome.status)
                    throw exit_request{outcome.status, ""};
                return;
            }
            std::cerr << "npipe: pipe '" << name << "': the server went away; reconnecting\n";
        }
    });
}

}  // namespace npipe::cli
