// `npipe serve NAME`: netcat's listener for pipes, or with `-- CMD` an inetd that runs CMD for
// every client with the pipe as its stdin and stdout.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "commands.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_server.hpp"
#include "relay.hpp"

extern char** environ;

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

int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs argv with the connection as stdin and stdout; stderr stays ours.
pid_t spawn_for_connection(const std::vector<std::string>& argv, int connection) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, connection, 0);
    posix_spawn_file_actions_adddup2(&actions, connection, 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    int error = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (error)
        throw exit_request{127, "cannot run '" + argv[0] + "': " + std::strerror(error)};
    return pid;
}

}  // namespace

void add_serve_command(CLI::App& app) {
    static std::string name;
    static std::string instances_text = "1";
    static bool current_user_only = false;
    static bool once = false;
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
    cmd->add_option("CMD", command, "Command to run for each client (after --)");
    cmd->callback([] {
        int instances = parse_instances(instances_text);
        pipe_options options;
        options.current_user_only = current_user_only;
        named_pipe_server server(name, pipe_direction::in_out, instances, options);

        if (command.empty()) {
            server.wait_for_connection();
            if (int status = relay(server))
                throw exit_request{status, ""};
            return;
        }

        // SIGINT / SIGTERM end the service cleanly: the wait is aborted, children are told to
        // stop, and the server's destructor removes the socket file.
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
        std::mutex children_mutex;
        std::set<pid_t> children;
        std::atomic<bool> stopping{false};
        std::thread watcher([&] {
            int sig = 0;
            sigwait(&stop_signals, &sig);
            if (sig == 0)
                return;
            stopping = true;
            server.close();
            std::lock_guard lock(children_mutex);
            for (pid_t pid : children)
                ::kill(pid, SIGTERM);
        });

        auto reap = [&](bool block) {
            int status = 0;
            pid_t pid = ::waitpid(-1, &status, block ? 0 : WNOHANG);
            if (pid <= 0)
                return std::pair<pid_t, int>{pid, 0};
            std::lock_guard lock(children_mutex);
            children.erase(pid);
            return std::pair<pid_t, int>{pid, exit_code(status)};
        };

        int result = 0;
        while (!stopping) {
            while (reap(false).first > 0) {
            }
            std::size_t running;
            {
                std::lock_guard lock(children_mutex);
                running = children.size();
            }
            if (instances != max_allowed_server_instances &&
                running >= static_cast<std::size_t>(instances)) {
                reap(true);  // full: the next client waits in the backlog until one finishes
                continue;
            }
            std::error_code ec;
            server.wait_for_connection(ec);
            if (ec == errc::operation_aborted)
                break;
            if (ec)
                throw pipe_error(ec, name, "wait for connection");
            pid_t pid = spawn_for_connection(command, server.native_handle());
            {
                std::lock_guard lock(children_mutex);
                children.insert(pid);
            }
            server.disconnect();  // the child has its own copy of the connection
            if (once) {
                for (;;) {
                    auto [done, status] = reap(true);
                    if (done == pid) {
                        result = status;
                        break;
                    }
                    if (done < 0)
                        break;
                }
                break;
            }
        }
        if (!stopping)
            pthread_kill(watcher.native_handle(), SIGTERM);  // let the watcher finish
        watcher.join();
        while (reap(true).first > 0) {
        }
        if (result)
            throw exit_request{result, ""};
    });
}

}  // namespace npipe::cli
