// `npipe rpc call|notify|serve`: JSON-RPC 2.0 from a shell, on npipe::rpc (docs/rpc.md). Flag
// parsing and the accept loop only; the protocol, and running a command per request
// (rpc::command_handler), are the library's.
#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>

#include <csignal>
#endif

#include <atomic>
#include <iostream>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "commands.hpp"
#include "flags.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/rpc/rpc.hpp"
#ifdef NPIPE_HAVE_REMOTE
#include "remote_flags.hpp"
#endif

namespace npipe::cli {
namespace {

struct rpc_flags {
    std::string name, method, params_text;
    std::string server = ".";
#ifdef NPIPE_HAVE_REMOTE
    remote_client_flags remote;  // --ca --cert --key --token-file --dead-peer-timeout
#endif
    std::string framing_text = "header";
    std::chrono::milliseconds timeout{0};
    std::vector<std::string> command;

    rpc::framing framing() const {
        return *rpc::parse_framing(framing_text);
    }
    rpc::json params() const {
        if (params_text.empty())
            return nullptr;
        std::error_code ec;
        auto p = rpc::parse_document(params_text, ec);
        if (!p || !(p->is_array() || p->is_object()))
            throw CLI::ValidationError("PARAMS_JSON", "must be a JSON array or object");
        return *p;
    }
};

void add_common_flags(CLI::App* cmd, rpc_flags& f, bool with_method) {
#ifdef _WIN32
    cmd->add_option("NAME", f.name, "Pipe name: \\\\.\\pipe\\NAME")->required();
#else
    cmd->add_option("NAME", f.name, "Pipe name (a simple name, or a socket path starting with /)")
        ->required();
#endif
    if (with_method) {
        cmd->add_option("METHOD", f.method, "Method name")->required();
        cmd->add_option("PARAMS_JSON", f.params_text,
                        "Parameters: a JSON array (by position) or object (by name)");
    }
    cmd->add_option("--framing", f.framing_text,
                    "header (Content-Length, as LSP and StreamJsonRpc), length (4-byte big-endian "
                    "prefix), newline, or message (one pipe message each)")
        ->check(CLI::IsMember({"header", "length", "newline", "message"}))
        ->capture_default_str();
}

// `call` and `notify` reach a pipe on this machine or, through its `npipe gateway`, on another,
// with `npipe connect`'s flags (--server HOST[:PORT] or NAME //HOST/pipe/PIPE, and TLS).
void add_client_flags(CLI::App* cmd, rpc_flags& f) {
#ifdef NPIPE_HAVE_REMOTE
    const char* server_help =
        "Server host ('.' is this machine; another, HOST[:PORT], is reached through its "
        "`npipe gateway` over TLS); NAME may also be //HOST/pipe/PIPE";
#else
    const char* server_help =
        "Server host: only '.' (this machine), as this npipe is built without remote pipes";
#endif
    cmd->add_option("--server", f.server, server_help)->capture_default_str();
#ifdef NPIPE_HAVE_REMOTE
    add_remote_client_flags(cmd, f.remote);
#endif
}

// A client pipe for `call` and `notify`, connected within the timeout (none: wait for it).
std::unique_ptr<named_pipe_client> connect_client(const rpc_flags& f) {
    std::string server = f.server, name = f.name;
    pipe_options options;
#ifdef NPIPE_HAVE_REMOTE
    apply_remote_client_flags(f.remote, server, name, options);
    auto pipe = std::make_unique<named_pipe_client>(server, name, pipe_direction::in_out, options);
#else
    // The library names the link step a program lacks; a user is told what this npipe lacks.
    std::unique_ptr<named_pipe_client> pipe;
    try {
        pipe = std::make_unique<named_pipe_client>(server, name, pipe_direction::in_out, options);
    } catch (const pipe_error& e) {
        if (e.code() != errc::not_supported)
            throw;
        throw exit_request{2, "--server " + server + ": remote pipes are not available in " +
#ifdef _WIN32
                                  "npipe.exe (npipe::remote is not built on Windows)"
#else
                                  "this npipe (configured with NPIPE_BUILD_REMOTE=OFF)"
#endif
        };
    }
#endif
    if (f.timeout.count() > 0)
        pipe->connect(f.timeout);
    else
        pipe->connect();
    if (f.framing() == rpc::framing::message)
        pipe->set_read_mode(transmission_mode::message);
    return pipe;
}

[[noreturn]] void fail_with(const rpc::rpc_error& e) {
    std::string text = std::to_string(e.code()) + " " + e.message();
    if (!e.data().is_null())
        text += " (data: " + rpc::serialize(e.data()) + ")";
    throw exit_request{1, text};
}

void call_command(const rpc_flags& f) {
    auto params = f.params();  // a usage error before any wait for a server
    auto pipe = connect_client(f);
    rpc::connection conn(*pipe, {.framing = f.framing(), .handler_threads = 1});
    conn.start();
    try {
        rpc::json result = conn.call(f.method, std::move(params), {.timeout = f.timeout});
        std::cout << rpc::serialize(result) << std::endl;
    } catch (const rpc::rpc_error& e) {
        fail_with(e);
    }
}

void notify_command(const rpc_flags& f) {
    auto params = f.params();
    auto pipe = connect_client(f);
    rpc::connection conn(*pipe, {.framing = f.framing(), .handler_threads = 1});
    try {
        conn.notify(f.method, std::move(params));
    } catch (const rpc::rpc_error& e) {
        fail_with(e);
    }
}

// Where a stop request meets `serve`'s accept loop: SIGINT or SIGTERM (on Windows Ctrl+C,
// Ctrl+Break or a closed console) closes the instance waiting for a client, so the loop ends and,
// on POSIX, the socket is removed.
class accept_loop_stop {
  public:
    accept_loop_stop();
    ~accept_loop_stop();
    accept_loop_stop(const accept_loop_stop&) = delete;
    accept_loop_stop& operator=(const accept_loop_stop&) = delete;

    /// Makes `pipe` the instance a stop closes (nullptr: none); false once a stop came.
    bool waiting_on(named_pipe_server* pipe) {
        std::lock_guard lock(m_);
        waiting_ = stopping_ ? nullptr : pipe;
        return !stopping_;
    }

  private:
    void request() {
        std::lock_guard lock(m_);
        stopping_ = true;
        if (waiting_)
            waiting_->close();
    }

    std::mutex m_;
    named_pipe_server* waiting_ = nullptr;
    bool stopping_ = false;
#ifdef _WIN32
    // Windows runs a console handler on a thread of its own, with no argument: it finds the loop
    // here.
    static inline std::atomic<accept_loop_stop*> current_{nullptr};
    static BOOL WINAPI on_console_event(DWORD) {
        if (auto* stop = current_.load())
            stop->request();
        return TRUE;
    }
#else
    sigset_t signals_;
    std::atomic<bool> ending_{false};
    std::thread watcher_;
#endif
};

#ifdef _WIN32
accept_loop_stop::accept_loop_stop() {
    current_ = this;
    ::SetConsoleCtrlHandler(on_console_event, TRUE);
}

accept_loop_stop::~accept_loop_stop() {
    ::SetConsoleCtrlHandler(on_console_event, FALSE);
    current_ = nullptr;
}
#else
accept_loop_stop::accept_loop_stop() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    watcher_ = std::thread([this] {
        int sig = 0;
        sigwait(&signals_, &sig);
        if (!ending_)
            request();
    });
}

accept_loop_stop::~accept_loop_stop() {
    // A loop left without a signal (an error) wakes the watcher with the signal it waits for.
    ending_ = true;
    pthread_kill(watcher_.native_handle(), SIGTERM);
    watcher_.join();
}
#endif

// `serve`: every client gets a connection whose every method runs the command, until a stop.
void serve_command(const rpc_flags& f) {
    if (f.command.empty())
        throw CLI::ValidationError("CMD", "give the command after --");
    struct session {
        std::unique_ptr<named_pipe_server> pipe;
        std::unique_ptr<rpc::connection> conn;
    };
    std::list<session> sessions;
    auto mode =
        f.framing() == rpc::framing::message ? transmission_mode::message : transmission_mode::byte;
    auto handler = rpc::command_handler(f.command);
    accept_loop_stop stop;
    for (;;) {
        sessions.remove_if([](const session& s) { return !s.conn->is_open(); });
        auto pipe = std::make_unique<named_pipe_server>(f.name, pipe_direction::in_out,
                                                        max_allowed_server_instances, mode);
        if (!stop.waiting_on(pipe.get()))
            break;
        std::error_code ec;
        pipe->wait_for_connection(ec);
        if (!stop.waiting_on(nullptr))
            break;
        if (ec)
            continue;  // a client gone before it was accepted
        auto conn = std::make_unique<rpc::connection>(
            *pipe, rpc::connection_options{.framing = f.framing()});
        conn->set_fallback(handler);
        conn->start();
        sessions.push_back({std::move(pipe), std::move(conn)});
    }
    sessions.clear();
}

}  // namespace

void add_rpc_command(CLI::App& app) {
    static rpc_flags call_flags, notify_flags, serve_flags;
    auto* rpc_cmd = app.add_subcommand(
        "rpc", "JSON-RPC 2.0 over a pipe, as StreamJsonRpc (.NET) and vscode-jsonrpc speak it");
    rpc_cmd->require_subcommand(1);

    auto* call = rpc_cmd->add_subcommand(
        "call",
        "Call METHOD; print the result as JSON (an error: exit 1, code and message on stderr)");
    add_common_flags(call, call_flags, true);
    add_client_flags(call, call_flags);
    add_duration_option(call, "--timeout", call_flags.timeout, bare_unit::milliseconds,
                        "Give up (and cancel the call) after this long, connecting included");
    call->callback([] { call_command(call_flags); });

    auto* notify = rpc_cmd->add_subcommand("notify", "Send METHOD as a notification (no answer)");
    add_common_flags(notify, notify_flags, true);
    add_client_flags(notify, notify_flags);
    add_duration_option(notify, "--timeout", notify_flags.timeout, bare_unit::milliseconds,
                        "Give up after this long without a server");
    notify->callback([] { notify_command(notify_flags); });

    auto* serve = rpc_cmd->add_subcommand(
        "serve",
        "Answer every request by running CMD with the method as its last argument and the params "
        "on stdin: its stdout (JSON) is the result, a non-zero exit an error with its stderr as "
#ifdef _WIN32
        "the message. Until Ctrl+C or Ctrl+Break");
#else
        "the message. Until SIGINT/SIGTERM");
#endif
    add_common_flags(serve, serve_flags, false);
    serve->add_option("CMD", serve_flags.command, "Command to run per request (after --)");
    serve->callback([] { serve_command(serve_flags); });
}

}  // namespace npipe::cli
