// `npipe serve NAME`: netcat's listener for pipes, or with `-- CMD` an inetd that runs CMD for
// every client with the pipe as its stdin and stdout.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <list>
#include <mutex>
#include <set>
#include <thread>

#include "commands.hpp"
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

// Ends `npipe serve -- CMD` cleanly on SIGINT / SIGTERM: a thread waits for them (blocked in every
// other thread), closes the server, which aborts its wait, and stops the children. The
// destructor stops the thread on every way out of the serve loop, exceptions included.
class stop_watcher {
  public:
    explicit stop_watcher(named_pipe_server& server) : server_(server) {
        sigset_t set = signals();
        sigaddset(&set, SIGCHLD);  // only the serve loop waits for it, with sigtimedwait
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
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

        stop_watcher watcher(server);
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
