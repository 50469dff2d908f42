// `npipe serve NAME` on Windows: netcat's listener for \\.\pipe\NAME. One client, stdin and
// stdout relayed to it (npipe::relay), Ctrl+C ends it cleanly; with --echo, the async echo
// server of serve_echo.cpp; with -- CMD, inetd (npipe::session_supervisor), as on Linux. What
// serve does on Linux besides (socket-file options) is refused with the reason.
#include <windows.h>

#include <atomic>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "flags.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_server.hpp"
#include "relay.hpp"
#include "serve_sessions.hpp"

namespace npipe::cli {
namespace {

// Ctrl+C, Ctrl+Break, a closed console window or a logoff close the server from the handler's
// own thread (Windows runs console handlers on a new thread), which aborts the wait or the
// relay, and stop the sessions of -- CMD (the end of their input, termination after the grace
// period); a second event terminates them at once. serve then exits as a shell reports an
// interrupt (130).
std::atomic<named_pipe_server*> serving{nullptr};
std::atomic<session_supervisor*> supervising{nullptr};
std::atomic<bool> interrupted{false};

BOOL WINAPI on_console_event(DWORD) {
    bool again = interrupted.exchange(true);
    auto* sessions = supervising.load();
    if (again) {
        if (sessions)
            sessions->kill_all();
        return TRUE;
    }
    if (auto* server = serving.load())
        server->close();
    if (sessions)
        sessions->stop();
    return TRUE;
}

class console_stop {
  public:
    explicit console_stop(named_pipe_server& server, session_supervisor* sessions = nullptr) {
        serving = &server;
        supervising = sessions;
        ::SetConsoleCtrlHandler(on_console_event, TRUE);
    }
    ~console_stop() {
        ::SetConsoleCtrlHandler(on_console_event, FALSE);
        serving = nullptr;
        supervising = nullptr;
    }
    console_stop(const console_stop&) = delete;
    console_stop& operator=(const console_stop&) = delete;
    bool stopping() const { return interrupted; }
};

// Tells a client whose command could not start, on the connection itself, so that it does not
// take the end of the stream for a command that had nothing to say (the pipe's buffer takes the
// line at once). The reason stays in the server's log.
void tell_client_start_failed(named_pipe_server& server) {
    static constexpr char line[] = "npipe: the server could not start its command\n";
    std::error_code ignored;
    server.write(std::as_bytes(std::span(line, sizeof line - 1)), ignored);
}

// `serve NAME -- CMD`: CMD for every client (serve_sessions.cpp) until Ctrl+C; the exit status.
int serve_command(const std::string& name, const std::vector<std::string>& command, bool once,
                  int instances, const pipe_options& options,
                  std::chrono::milliseconds kill_grace) {
    std::optional<exit_status> last;
    auto sessions = make_session_supervisor(command, kill_grace, last);
    named_pipe_server server(name, pipe_direction::in_out, instances, options);
    console_stop stop(server, sessions.get());
    session_hooks hooks;
    hooks.start_failed = tell_client_start_failed;
    int result = serve_sessions(name, server, *sessions, instances, once, last, hooks);
    if (stop.stopping() && (once || result == 0))
        result = once ? 130 : 0;
    return result;
}

}  // namespace

void add_serve_command(CLI::App& app) {
    static std::string name;
    static bool current_user_only = false;
    static relay_options limits;
    static std::string instances_text = "unlimited";
    static bool once = false;
    static std::string kill_grace_text = "5s";
    static bool echo = false;
    static bool message = false;
    static std::string refused_text;
    static std::vector<std::string> command;
    auto* cmd = app.add_subcommand(
        "serve",
        "Serve a pipe: accept one client and copy stdin/stdout to it (like nc -l: later "
        "clients find the pipe busy and wait for it); with --echo, echo every client's bytes "
        "back; with -- CMD, run CMD for every client with the pipe as its stdin and stdout");
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
                    "With -- CMD or --echo: clients served at once, 1..254 or 'unlimited' "
                    "(default: -- CMD 1, --echo unlimited); later ones wait their turn");
    cmd->add_flag("--once", once, "With CMD: serve one client, then exit with CMD's status");
    cmd->add_option("--kill-grace", kill_grace_text,
                    "With CMD: on Ctrl+C, how long the running commands get after the end of "
                    "their input before they are terminated (500ms, 5s, 1m; a bare number is "
                    "seconds)")
        ->capture_default_str();
    cmd->add_option("CMD", command,
                    "Command to run for each client (after --), with the pipe as its stdin and "
                    "stdout");
    // Linux's flags that have no Windows implementation: refused with the reason rather than
    // reported as unknown.
    cmd->add_flag("--shared-memory")->group("");
    for (const char* option : {"--mode", "--group", "--allow-uid", "--allow-gid"})
        cmd->add_option(option, refused_text, "Not on Windows (see npipe --help)")->group("");
    cmd->footer(R"(Examples:
  npipe serve backup > copy.tar             receive one client's data into a file
  npipe serve backup --idle-timeout 30s < file.tar
  npipe serve echo --echo --idle-timeout 30s
                                            an echo server for any number of clients
  npipe serve upper --max-instances 4 -- cmd /c sort
                                            inetd: `sort` for every client, 4 at once

Exit status: 0 when the transfer completed; 1 when it did not (the client went away, our
output was closed, a timeout) with the reason on stderr; 130 after Ctrl+C (--echo and -- CMD:
0, as after SIGINT on Linux). With -- CMD --once: CMD's exit code; 127 when CMD is not found,
126 when it cannot be run.)");
    cmd->callback([cmd] {
        bool instances_given = cmd->count("--max-instances") > 0;
        int instances = parse_instances(instances_given ? instances_text : "unlimited");
        auto kill_grace = parse_duration("--kill-grace", kill_grace_text, bare_unit::seconds);
        if (command.empty() && (once || cmd->count("--kill-grace")))
            throw CLI::ValidationError(once ? "--once" : "--kill-grace", "applies to -- CMD only");
        if (!echo && command.empty() && instances_given)
            throw CLI::ValidationError(
                "--max-instances", "applies to -- CMD and --echo; plain serve takes one client");
        if (echo && !command.empty())
            throw CLI::ValidationError("--echo", "echoes by itself: give no CMD");
        // CMD's pipes are relayed by the session supervisor, which has no timeouts yet.
        if (!command.empty() &&
            (limits.idle_timeout.count() > 0 || limits.write_timeout.count() > 0))
            throw exit_request{2,
                               "serve --idle-timeout / --write-timeout do not apply to -- CMD on "
                               "Windows"};
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
        if (!command.empty()) {
            int status = serve_command(name, command, once, instances_given ? instances : 1,
                                       options, kill_grace);
            if (status)
                throw exit_request{status, ""};
            return;
        }
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
