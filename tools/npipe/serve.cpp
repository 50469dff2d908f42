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
#include <cstring>
#include <iostream>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "commands.hpp"
#include "flags.hpp"
#include "ids.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/process.hpp"
#include "relay.hpp"

namespace npipe::cli {
namespace {

int parse_instances(const std::string& text) {
    if (text == "unlimited")
        return max_allowed_server_instances;
    std::size_t used = 0;
    int n = -1;
    try {
        n = std::stoi(text, &used);
    } catch (const std::exception&) {
    }
    if (used != text.size() || n < 1 || n > max_server_instances_limit)
        throw CLI::ValidationError("--max-instances",
                                   "expected 1..254 or 'unlimited', got '" + text + "'");
    return n;
}

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

// Ends `npipe serve` (plain or -- CMD) cleanly on SIGINT / SIGTERM: a thread waits for them
// (blocked in every other thread), closes the server, which aborts its wait or relay, and stops
// the children. The
// destructor stops the thread on every way out of the serve loop, exceptions included.
class stop_watcher {
  public:
    explicit stop_watcher(named_pipe_server& server) : server_(server) {
        block_signals();
        thread_ = std::thread([this] {
            sigset_t stop = signals();
            int sig = 0;
            sigwait(&stop, &sig);
            stopping_ = true;
            server_.close();
            std::lock_guard lock(mutex_);
            for (auto* c : children_)
                c->kill(SIGTERM);
        });
    }
    ~stop_watcher() {
        if (!stopping_)
            pthread_kill(thread_.native_handle(), SIGTERM);
        thread_.join();
    }
    bool stopping() const { return stopping_; }
    /// Blocks SIGINT, SIGTERM and SIGCHLD in this thread (and the threads it starts later).
    static void block_signals() {
        sigset_t set = signals();
        sigaddset(&set, SIGCHLD);  // only the serve loop waits for it, with sigtimedwait
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }
    void track(child_process* c) {
        std::lock_guard lock(mutex_);
        children_.insert(c);
        if (stopping_)
            c->kill(SIGTERM);
    }
    void untrack(child_process* c) {
        std::lock_guard lock(mutex_);
        children_.erase(c);
    }

  private:
    static sigset_t signals() {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        return set;
    }
    named_pipe_server& server_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::set<child_process*> children_;
    std::thread thread_;
};

}  // namespace

void add_serve_command(CLI::App& app) {
    static std::string name;
    static std::string instances_text = "1";
    static bool current_user_only = false;
    static bool once = false;
    static std::string mode_text;
    static std::string group_text;
    static std::vector<std::string> allow_uids_text;
    static std::vector<std::string> allow_gids_text;
    static relay_options limits;
    static bool echo = false;
    static bool message = false;
    static std::vector<std::string> command;
    auto* cmd = app.add_subcommand(
        "serve",
        "Serve a pipe: with no CMD, accept one client and copy stdin/stdout to it (like nc -l); "
        "with -- CMD, run CMD for every client with the pipe as its stdin and stdout");
    cmd->add_option("NAME", name, "Pipe name (a simple name, or a socket path starting with /)")
        ->required();
    cmd->add_option("--max-instances", instances_text,
                    "Clients served at once: 1..254 or 'unlimited'; later ones wait their turn")
        ->capture_default_str();
    cmd->add_flag("--current-user-only", current_user_only,
                  "Socket mode 0600, and refuse clients run by another user");
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
    cmd->add_option("CMD", command, "Command to run for each client (after --)");
    cmd->callback([cmd] {
        int instances = parse_instances(instances_text);
        // Flags that would be silently ignored are refused (#17 item 9).
        if (once && command.empty())
            throw CLI::ValidationError("--once", "applies to -- CMD only");
        if (!echo && command.empty() && cmd->get_option("--max-instances")->count() > 0)
            throw CLI::ValidationError(
                "--max-instances", "applies to -- CMD and --echo; plain serve takes one client");
        pipe_options options;
        options.current_user_only = current_user_only;
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
            options.accept_peer = [allow_uids, allow_gids](const peer_credentials& peer) {
                if (allow_uids.count(peer.uid) || allow_gids.count(peer.gid))
                    return true;
                std::cerr << "npipe: pipe '" << name << "': refused a client (uid " << peer.uid
                          << ", gid " << peer.gid << ", pid " << peer.pid << ")\n";
                return false;
            };
        }
        // Signals are blocked before the socket exists, so a SIGTERM that arrives as soon as a
        // client can see the server still takes the clean way out (the watcher below).
        if (echo) {
            if (!command.empty())
                throw CLI::ValidationError("--echo", "echoes by itself: give no CMD");
            // Before block_signals(): the echo server takes SIGINT / SIGTERM with a signal_set.
            bool instances_given = cmd->get_option("--max-instances")->count() > 0;
            run_echo_server(name, message,
                            instances_given ? instances : max_allowed_server_instances, options,
                            limits);
            return;
        }
        stop_watcher::block_signals();
        named_pipe_server server(name, pipe_direction::in_out, instances, options);
        // SIGINT / SIGTERM close the server: the wait or the relay ends, clients read end of
        // stream, and the socket file is removed as the server is destroyed.
        stop_watcher watcher(server);

        if (command.empty()) {
            std::error_code ec;
            server.wait_for_connection(ec);
            if (ec == errc::operation_aborted)
                return;
            if (ec)
                throw pipe_error(ec, name, "wait for connection");
            int status = relay_stdio(server, limits);
            if (status && !watcher.stopping())
                throw exit_request{status, ""};
            return;
        }

        std::list<child_process> children;
        // Reaps the children that have ended; with `block`, first waits for one to end.
        auto reap = [&](bool block) {
            for (;;) {
                for (auto it = children.begin(); it != children.end();) {
                    if (it->try_wait()) {
                        watcher.untrack(&*it);
                        it = children.erase(it);
                        block = false;
                    } else {
                        ++it;
                    }
                }
                if (!block || children.empty())
                    return;
                sigset_t child_set;
                sigemptyset(&child_set);
                sigaddset(&child_set, SIGCHLD);
                timespec tick{1, 0};  // a SIGCHLD may have been consumed by an earlier pass
                sigtimedwait(&child_set, nullptr, &tick);
            }
        };

        int result = 0;
        while (!watcher.stopping()) {
            reap(false);
            if (instances != max_allowed_server_instances &&
                children.size() >= static_cast<std::size_t>(instances)) {
                reap(true);  // full: the next client waits in the backlog until one finishes
                continue;
            }
            std::error_code ec;
            server.wait_for_connection(ec);
            if (ec == errc::operation_aborted)
                break;
            if (ec)
                throw pipe_error(ec, name, "wait for connection");
            // CMD owns the connection: the timeouts become the socket's own (shared with the
            // child's descriptor), so CMD's blocking reads and writes fail after them.
            if (limits.idle_timeout.count() > 0) {
                auto tv = to_timeval(limits.idle_timeout);
                ::setsockopt(server.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            }
            if (limits.write_timeout.count() > 0) {
                auto tv = to_timeval(limits.write_timeout);
                ::setsockopt(server.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            }
            process_options io;
            io.stdin_fd = io.stdout_fd = server.native_handle();
            auto& child = children.emplace_back(spawn_command(command, io));
            watcher.track(&child);
            server.disconnect();  // closes our copy only: the child keeps the connection
            if (once) {
                result = child.wait().shell_code();
                break;
            }
        }
        for (auto& child : children) {
            child.wait();
            watcher.untrack(&child);
        }
        if (result)
            throw exit_request{result, ""};
    });
}

}  // namespace npipe::cli
