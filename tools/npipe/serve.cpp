// `npipe serve NAME`: netcat's listener for pipes, or with `-- CMD` an inetd that runs CMD for
// every client with the pipe as its stdin and stdout.
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "commands.hpp"
#include "flags.hpp"
#include "ids.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/printable.hpp"
#include "npipe/process.hpp"
#include "npipe/session_supervisor.hpp"
#include "relay.hpp"
#include "serve_sessions.hpp"

namespace npipe::cli {
namespace {

mode_t parse_mode(const std::string& text) {
    std::size_t used = 0;
    unsigned long mode = 01000;
    try {
        mode = std::stoul(text, &used, 8);
    } catch (const std::exception&) {
    }
    if (text.empty() || used != text.size() || mode > 0777)
        throw CLI::ValidationError(
            "--mode", "expected octal permission bits such as 660, got '" + text + "'");
    return static_cast<mode_t>(mode);
}

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>(ms.count() % 1000 * 1000);
    return tv;
}

// The signals that stop every serve variant (and remove its socket).
sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&set, sig);
    return set;
}

// Ends `npipe serve` (plain or -- CMD) cleanly on SIGINT / SIGTERM / SIGHUP: a thread waits for
// them (blocked in every other thread), closes the server, which aborts its wait or relay, and
// stops the sessions (SIGTERM, SIGKILL after the grace period); a second signal kills them at
// once. The destructor stops the thread on every way out of the serve loop, exceptions included.
class stop_watcher {
  public:
    stop_watcher(named_pipe_server& server, session_supervisor* sessions)
        : server_(server), sessions_(sessions) {
        block_signals();
        thread_ = std::thread([this] {
            sigset_t stop = stop_signals();
            for (;;) {
                int sig = 0;
                sigwait(&stop, &sig);
                if (quitting_)
                    return;
                int first = 0;
                if (!signal_.compare_exchange_strong(first, sig)) {  // pressed again
                    if (sessions_)
                        sessions_->kill_all();
                    continue;
                }
                server_.close();
                if (sessions_)
                    sessions_->stop();
            }
        });
    }
    ~stop_watcher() {
        quitting_ = true;
        pthread_kill(thread_.native_handle(), SIGTERM);
        thread_.join();
    }
    /// The signal that stopped us (0 while none has).
    int signal() const { return signal_; }
    bool stopping() const { return signal_ != 0; }
    /// Blocks the stop signals in this thread (and the threads it starts later).
    static void block_signals() {
        sigset_t set = stop_signals();
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }

  private:
    named_pipe_server& server_;
    session_supervisor* sessions_;
    std::atomic<int> signal_{0};
    std::atomic<bool> quitting_{false};
    std::thread thread_;
};

// Tells a client whose command could not start, on the connection itself, so that it does not
// take the end of the stream for a command that had nothing to say. Never blocks: a client that
// reads nothing just misses the line. The reason stays in the server's log.
void tell_client_start_failed(int connection) {
    static constexpr char line[] = "npipe: the server could not start its command\n";
    [[maybe_unused]] auto n =
        ::send(connection, line, sizeof line - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

// Logs refused clients without letting a connect loop flood the log: the first refusal at
// once, then at most one line a second, which counts the refusals it stands for.
class refusal_log {
  public:
    explicit refusal_log(const std::string& name) : name_(printable(name)) {}
    ~refusal_log() {
        if (held_ > 0)
            std::cerr << "npipe: pipe '" << name_ << "': refused " << held_ << " more client"
                      << (held_ == 1 ? "" : "s") << '\n';
    }
    refusal_log(const refusal_log&) = delete;
    refusal_log& operator=(const refusal_log&) = delete;

    void refused(const peer_credentials& peer) {
        auto now = std::chrono::steady_clock::now();
        if (last_line_ && now - *last_line_ < std::chrono::seconds(1)) {
            ++held_;
            return;
        }
        std::cerr << "npipe: pipe '" << name_ << "': refused a client (uid " << peer.uid << ", gid "
                  << peer.gid << ", pid " << peer.pid << ")";
        if (held_ > 0)
            std::cerr << " and " << held_ << " more since the last line";
        std::cerr << '\n';
        held_ = 0;
        last_line_ = now;
    }

  private:
    std::string name_;
    std::optional<std::chrono::steady_clock::time_point> last_line_;
    std::uint64_t held_ = 0;
};

// `serve NAME -- CMD`: CMD for every client (serve_sessions.cpp), at most `instances` at once,
// until a stop signal (or, with --once, the first client's CMD ends).
void serve_command(const std::string& name, const std::vector<std::string>& command, bool once,
                   int instances, const pipe_options& options, const relay_options& limits,
                   std::chrono::milliseconds kill_grace) {
    std::optional<exit_status> last;
    auto sessions = make_session_supervisor(command, kill_grace, last);
    named_pipe_server server(name, pipe_direction::in_out, instances, options);
    stop_watcher watcher(server, sessions.get());
    session_hooks hooks;
    // CMD owns the connection: the timeouts become the socket's own (shared with the child's
    // descriptor), so CMD's blocking reads and writes fail after them.
    hooks.before_start = [&limits](named_pipe_server& connection) {
        if (limits.idle_timeout.count() > 0) {
            auto tv = to_timeval(limits.idle_timeout);
            ::setsockopt(connection.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
        if (limits.write_timeout.count() > 0) {
            auto tv = to_timeval(limits.write_timeout);
            ::setsockopt(connection.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
    };
    hooks.start_failed = [](named_pipe_server& connection) {
        tell_client_start_failed(connection.native_handle());
    };
    int result = serve_sessions(name, server, *sessions, instances, once, last, hooks);
    if (watcher.stopping() && (once || result == 0))
        result = once ? 128 + watcher.signal() : 0;
    if (result)
        throw exit_request{result, ""};
}

}  // namespace

void add_serve_command(CLI::App& app) {
    static std::string name;
    static std::string instances_text = "1";
    static bool current_user_only = false;
    static bool shared_memory = false;
    static bool once = false;
    static std::string mode_text;
    static std::string group_text;
    static std::vector<std::string> allow_uids_text;
    static std::vector<std::string> allow_gids_text;
    static relay_options limits;
    static bool echo = false;
    static bool message = false;
    static std::vector<std::string> command;
    static std::string kill_grace_text = "5s";
    auto* cmd = app.add_subcommand(
        "serve",
        "Serve a pipe: with no CMD, accept one client and copy stdin/stdout to it (like nc -l: "
        "later clients find no server and wait for one); with -- CMD, run CMD for every client "
        "with the pipe as its stdin and stdout");
    cmd->add_option("NAME", name, "Pipe name (a simple name, or a socket path starting with /)")
        ->required();
    cmd->add_option("--max-instances", instances_text,
                    "Clients served at once: 1..254 or 'unlimited'; later ones wait their turn")
        ->capture_default_str();
    cmd->add_flag("--current-user-only", current_user_only,
                  "Socket mode 0600, and refuse clients run by another user");
    add_shared_memory_flag(cmd, shared_memory);
    cmd->add_flag("--once", once, "With CMD: serve one client, then exit with CMD's status");
    cmd->add_option("--mode", mode_text,
                    "Socket file permissions in octal (e.g. 660), set from the file's creation");
    cmd->add_option("--group", group_text,
                    "Socket file group (name or number); the file is never open to another group");
    cmd->add_option("--allow-uid", allow_uids_text,
                    "Accept only clients run by this user (name or number; repeatable; with "
                    "--allow-gid, either matching admits)")
        ->allow_extra_args(false);
    cmd->add_option("--allow-gid", allow_gids_text,
                    "Accept only clients whose primary group is this (name or number; repeatable)")
        ->allow_extra_args(false);
    add_duration_option(cmd, "--idle-timeout", limits.idle_timeout, bare_unit::seconds,
                        "Close a client after this long in which nothing moved (with CMD: CMD's "
                        "reads of the pipe fail after it without data; with --echo: a client "
                        "that sends nothing, or no whole message, for this long)");
    add_duration_option(cmd, "--write-timeout", limits.write_timeout, bare_unit::seconds,
                        "Close a client that reads nothing for this long while we write to it "
                        "(with CMD: CMD's writes to the pipe fail after it without progress; "
                        "with --echo: a client that takes none of its echo for this long)");
    auto* echo_flag = cmd->add_flag(
        "--echo", echo,
        "Run an async echo server on one thread: each client's bytes (or messages) are sent "
        "straight back, for any number of clients, until SIGINT/SIGTERM");
    cmd->add_flag("--message", message,
                  "With --echo: a message-mode pipe, each message echoed whole")
        ->needs(echo_flag);
    cmd->add_option("--kill-grace", kill_grace_text,
                    "With CMD: on SIGINT/SIGTERM/SIGHUP, how long the running commands get "
                    "after SIGTERM before SIGKILL (500ms, 5s, 1m; a bare number is seconds)")
        ->capture_default_str();
    cmd->add_option("CMD", command, "Command to run for each client (after --)");
    cmd->callback([cmd] {
        int instances = parse_instances(instances_text);
        auto kill_grace = parse_duration("--kill-grace", kill_grace_text, bare_unit::seconds);
        if (command.empty() && cmd->get_option("--kill-grace")->count() > 0)
            throw CLI::ValidationError("--kill-grace", "applies only with -- CMD");
        // Flags that would be silently ignored are refused (#17 item 9).
        if (once && command.empty())
            throw CLI::ValidationError("--once", "applies to -- CMD only");
        if (!echo && command.empty() && cmd->get_option("--max-instances")->count() > 0)
            throw CLI::ValidationError(
                "--max-instances", "applies to -- CMD and --echo; plain serve takes one client");
        // CMD gets the connection's descriptor as its stdin and stdout: the rings live in
        // this process's library, which a command cannot read or write.
        if (shared_memory && !command.empty())
            throw CLI::ValidationError("--shared-memory",
                                       "does not apply to -- CMD (the command gets the "
                                       "connection's descriptor, and shared memory moves the "
                                       "bytes in npipe's library, not through a descriptor)");
        // The relay's timeouts wait on the connection's socket, which shows no data there
        // (--echo's are timers around its npipe::asio operations: they work).
        if (shared_memory && !echo &&
            (limits.idle_timeout.count() > 0 || limits.write_timeout.count() > 0))
            throw CLI::ValidationError("--shared-memory",
                                       "cannot be combined with --idle-timeout or --write-timeout");
        pipe_options options;
        options.current_user_only = current_user_only;
        options.shared_memory = shared_memory;
        if (!mode_text.empty())
            options.socket_mode = parse_mode(mode_text);
        if (!group_text.empty())
            options.socket_group = parse_id("--group", group_text, group_id);
        std::set<uid_t> allow_uids;
        std::set<gid_t> allow_gids;
        for (auto& u : allow_uids_text)
            allow_uids.insert(parse_id("--allow-uid", u, user_id));
        for (auto& g : allow_gids_text)
            allow_gids.insert(parse_id("--allow-gid", g, group_id));
        if (!allow_uids.empty() || !allow_gids.empty()) {
            auto log = std::make_shared<refusal_log>(name);
            options.accept_peer = [allow_uids, allow_gids, log](const peer_credentials& peer) {
                if (allow_uids.count(peer.uid) || allow_gids.count(peer.gid))
                    return true;
                log->refused(peer);
                return false;
            };
        }
        // Signals are blocked before the socket exists, so a SIGTERM that arrives as soon as a
        // client can see the server still takes the clean way out (the watcher below).
        if (echo) {
            if (!command.empty())
                throw CLI::ValidationError("--echo", "echoes by itself: give no CMD");
            // Before block_signals(): the echo server takes the stop signals with a signal_set.
            bool instances_given = cmd->get_option("--max-instances")->count() > 0;
            run_echo_server(name, message,
                            instances_given ? instances : max_allowed_server_instances, options,
                            limits);
            return;
        }
        stop_watcher::block_signals();
        if (command.empty()) {
            named_pipe_server server(name, pipe_direction::in_out, instances, options);
            // A stop signal closes the server: the wait or the relay ends, the client reads end
            // of stream, and the socket file is removed as the server is destroyed.
            stop_watcher watcher(server, nullptr);
            std::error_code ec;
            server.wait_for_connection(ec);
            if (ec && ec != errc::operation_aborted)
                throw pipe_error(ec, name, "wait for connection");
            if (!ec) {
                // One client and no more: a second one must not queue in a backlog nobody will
                // accept from, its data lost and its connect's timeout ignored (#17). With the
                // socket gone it waits as for a missing or busy server, and times out.
                server.stop_listening();
                int status = relay_stdio(server, limits);
                if (status && !watcher.stopping())
                    throw exit_request{status, ""};
            }
            // Interrupted: what we copied may be short, so say so as a shell would (130 for
            // Ctrl-C), and never 0 (`npipe serve x > f && use f`).
            if (watcher.stopping())
                throw exit_request{128 + watcher.signal(), ""};
            return;
        }
        serve_command(name, command, once, instances, options, limits, kill_grace);
    });
}

}  // namespace npipe::cli
