// `npipe serve NAME` on Windows: netcat's listener for \\.\pipe\NAME. One client, stdin and
// stdout relayed to it (npipe::relay), Ctrl+C ends it cleanly; or, with --echo, the async echo
// server of serve_echo.cpp, as on Linux. What serve does on Linux besides (-- CMD, socket-file
// options) is refused with the reason.
#include <windows.h>

#include <atomic>
#include <iostream>

#include "commands.hpp"
#include "flags.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_server.hpp"
#include "relay.hpp"

namespace npipe::cli {
namespace {

// Ctrl+C, Ctrl+Break, a closed console window or a logoff close the server from the handler's
// own thread (Windows runs console handlers on a new thread), which aborts the wait or the
// relay; serve then exits as a shell reports an interrupt (130).
std::atomic<named_pipe_server*> serving{nullptr};
std::atomic<bool> interrupted{false};

BOOL WINAPI on_console_event(DWORD) {
    interrupted = true;
    if (auto* server = serving.load())
        server->close();
    return TRUE;
}

class console_stop {
  public:
    explicit console_stop(named_pipe_server& server) {
        serving = &server;
        ::SetConsoleCtrlHandler(on_console_event, TRUE);
    }
    ~console_stop() {
        ::SetConsoleCtrlHandler(on_console_event, FALSE);
        serving = nullptr;
    }
    console_stop(const console_stop&) = delete;
    console_stop& operator=(const console_stop&) = delete;
    bool stopping() const { return interrupted; }
};

}  // namespace

void add_serve_command(CLI::App& app) {
    static std::string name;
    static bool current_user_only = false;
    static relay_options limits;
    static std::string instances_text = "unlimited";
    static bool echo = false;
    static bool message = false;
    static std::string refused_text;
    static std::vector<std::string> command;
    auto* cmd = app.add_subcommand(
        "serve",
        "Serve a pipe: accept one client and copy stdin/stdout to it (like nc -l: later "
        "clients find the pipe busy and wait for it); with --echo, echo every client's bytes "
        "back");
    cmd->add_option("NAME", name, "Pipe name: \\\\.\\pipe\\NAME")->required();
    cmd->add_flag("--current-user-only", current_user_only,
                  "Only the current user may connect (the pipe's DACL grants no one else)");
    add_duration_option(cmd, "--idle-timeout", limits.idle_timeout, bare_unit::seconds,
                        "Close the client after this long in which nothing moved (with "
                        "--echo: a client that sends nothing, or no whole message, for this "
                        "long)");
    add_duration_option(cmd, "--write-timeout", limits.write_timeout, bare_unit::seconds,
                        "Close the client when it reads nothing for this long while we write "
                        "(with --echo: a client that takes none of its echo for this long)");
    auto* echo_flag = cmd->add_flag(
        "--echo", echo,
        "Run an async echo server on one thread: each client's bytes (or messages) are sent "
        "straight back, for any number of clients, until Ctrl+C or Ctrl+Break");
    cmd->add_flag("--message", message,
                  "With --echo: a message-mode pipe, each message echoed whole")
        ->needs(echo_flag);
    cmd->add_option("--max-instances", instances_text,
                    "With --echo: clients served at once, 1..254 or 'unlimited'; later ones wait "
                    "their turn")
        ->capture_default_str();
    // Linux's flags that have no Windows implementation: refused with the reason rather than
    // reported as unknown.
    for (const char* flag : {"--once", "--shared-memory"})
        cmd->add_flag(flag)->group("");
    for (const char* option : {"--mode", "--group", "--allow-uid", "--allow-gid", "--kill-grace"})
        cmd->add_option(option, refused_text, "Not on Windows (see npipe --help)")->group("");
    cmd->add_option("CMD", command, "Not on Windows (see npipe --help)")->group("");
    cmd->footer(R"(Examples:
  npipe serve backup > copy.tar             receive one client's data into a file
  npipe serve backup --idle-timeout 30s < file.tar
  npipe serve echo --echo --idle-timeout 30s
                                            an echo server for any number of clients

Exit status: 0 when the transfer completed; 1 when it did not (the client went away, our
output was closed, a timeout) with the reason on stderr; 130 after Ctrl+C (--echo: 0, as
after SIGINT on Linux).)");
    cmd->callback([cmd] {
        if (!command.empty())
            throw exit_request{2,
                               "serve -- CMD is not available on Windows: the session "
                               "supervisor (a process per client) is not ported yet"};
        if (cmd->count("--once") || cmd->count("--kill-grace"))
            throw exit_request{2,
                               "serve --once / --kill-grace apply to -- CMD, which is not "
                               "available on Windows"};
        int instances = parse_instances(instances_text);
        if (!echo && cmd->count("--max-instances"))
            throw CLI::ValidationError("--max-instances",
                                       "applies to --echo; plain serve takes one client");
        for (const char* posix_only :
             {"--mode", "--group", "--allow-uid", "--allow-gid", "--shared-memory"})
            if (cmd->count(posix_only))
                throw exit_request{2, std::string("serve ") + posix_only +
                                          " is for Unix sockets and not available on Windows "
                                          "(--current-user-only restricts a pipe there)"};
        pipe_options options;
        options.current_user_only = current_user_only;
        if (echo)
            return run_echo_server(name, message, instances, options, limits);
        named_pipe_server server(name, pipe_direction::in_out, 1, options);
        console_stop stop(server);
        std::error_code ec;
        server.wait_for_connection(ec);
        if (ec && ec != errc::operation_aborted && !stop.stopping())
            throw pipe_error(ec, name, "wait for connection");
        if (!ec && !stop.stopping()) {
            // One client and no more: a second one waits for a server, as on Linux.
            server.stop_listening();
            int status = relay_stdio(server, limits);
            if (status && !stop.stopping())
                throw exit_request{status, ""};
        }
        if (stop.stopping())
            throw exit_request{130, ""};
    });
}

}  // namespace npipe::cli
