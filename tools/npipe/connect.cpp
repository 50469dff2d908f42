// `npipe connect NAME`: netcat's client for pipes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "flags.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "relay.hpp"
#ifdef NPIPE_HAVE_REMOTE
#include "remote_flags.hpp"
#endif

namespace npipe::cli {
namespace {

using namespace std::chrono_literals;

// connect(timeout) that, when stderr is a terminal, says once that it is waiting for a server
// (a mistyped name would otherwise wait in silence).
void connect_announced(named_pipe_client& pipe, std::chrono::milliseconds timeout,
                       const std::string& name) {
    if (output_level != verbosity::quiet && ::isatty(2) && timeout != 0ms) {
        std::error_code ec;
        pipe.connect(0ms, ec);
        if (!ec)
            return;
        if (ec != errc::timed_out)
            pipe.connect(0ms);  // throws the error with its explanation
        std::cerr << "npipe: waiting for a server on pipe '" << name << "'"
                  << (timeout.count() < 0 ? "" : " for up to " + format_duration(timeout))
                  << " (Ctrl-C to stop)\n";
    }
    pipe.connect(timeout);
}

}  // namespace

void add_connect_command(CLI::App& app) {
    static std::string name;
    static std::string server = ".";
    static std::chrono::milliseconds timeout{-1};
    static bool current_user_only = false;
    static bool retry = false;
    static bool shared_memory = false;
    auto* cmd = app.add_subcommand(
        "connect", "Connect to a pipe; copy stdin to it and it to stdout until both ends are done");
    cmd->add_option("NAME", name, "Pipe name (a simple name, or a socket path starting with /)")
        ->required();
    cmd->add_option("--server", server, "Server host ('.' is this machine)")->capture_default_str();
    add_duration_option(cmd, "--timeout", timeout, bare_unit::milliseconds,
                        "Give up after this long without a server (default: wait for one)");
    cmd->add_flag("--current-user-only", current_user_only, "Refuse a server run by another user");
#ifndef _WIN32
    add_shared_memory_flag(cmd, shared_memory);  // POSIX only: Windows pipes are the kernel's
#endif
    add_verbosity_flags(cmd);
    cmd->add_flag("--retry", retry,
                  "When the server goes away before our input ends, wait for it to come back "
                  "(a restarted server) and go on; input read but not yet sent is kept. Waits "
                  "grow from 0.1 s to 10 s; gives up when the server refuses us (access denied, "
                  "or closes 5 connections in a row at once, sending nothing)");
    cmd->footer(R"(Examples:
  npipe connect backup < file.tar            send a file to `npipe serve backup > copy.tar`
  echo hello | npipe connect echo --timeout 2s
  npipe connect /run/app.sock --retry        reconnect to a restarted server

Exit status: 0 when both directions completed; 1 when the transfer did not complete (the
server went away, our output was closed, an error) with the reason on stderr; 2 for usage
errors. A message-mode pipe is refused: use `npipe chat client NAME`.)");
#ifdef NPIPE_HAVE_REMOTE
    static remote_client_flags remote;  // --server HOST[:PORT] --ca --cert --key --token-file
    add_remote_client_flags(cmd, remote);
#endif
    cmd->callback([] {
        pipe_options options;
        options.current_user_only = current_user_only;
        options.shared_memory = shared_memory;
#ifdef NPIPE_HAVE_REMOTE
        apply_remote_client_flags(remote, server, name, options);
#endif
        std::vector<std::byte> carry;
        auto delay = 100ms;
        int closed_at_once = 0;
        for (;;) {
            named_pipe_client pipe(server, name, pipe_direction::in_out, options);
            connect_announced(pipe, timeout, name);
            if (pipe.transmission_mode() == transmission_mode::message)
                throw exit_request{1, "pipe '" + name +
                                          "' is a message-mode pipe: connect would run its "
                                          "messages together; use `npipe chat client " +
                                          name + "` (one line per message)"};
            auto start = std::chrono::steady_clock::now();
            relay_result result;
            int status = relay_stdio(pipe, {}, retry ? &carry : nullptr, &result);
            if (!retry || result.end != relay_end::peer_closed) {
                if (status)
                    throw exit_request{status, ""};
                return;
            }
            // A server that closes at once, again and again, refuses us: stop rather than
            // hammer it. One that served a while before going away is restarting.
            bool at_once =
                result.bytes_received == 0 && std::chrono::steady_clock::now() - start < 1s;
            closed_at_once = at_once ? closed_at_once + 1 : 0;
            if (closed_at_once >= 5)
                throw exit_request{1, "pipe '" + name +
                                          "': the server closed 5 connections in a row at "
                                          "once, sending nothing (it refuses us?); giving up"};
            if (std::chrono::steady_clock::now() - start > 30s)
                delay = 100ms;
            if (output_level != verbosity::quiet)
                std::cerr << "npipe: pipe '" << name << "': the server went away; reconnecting in "
                          << format_duration(delay) << '\n';
            std::this_thread::sleep_for(delay);
            delay = std::min<std::chrono::milliseconds>(delay * 2, 10s);
        }
    });
}

}  // namespace npipe::cli
