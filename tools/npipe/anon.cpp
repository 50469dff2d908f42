// `npipe anon`: anonymous pipes between npipe and a child process it starts.
//   send [--] CMD [ARGS...]   our stdin -> pipe -> CMD (which gets the handle in place of {})
//   recv [--] CMD [ARGS...]   CMD -> pipe -> our stdout
//   read HANDLE / write HANDLE  the child's side: the inherited pipe -> stdout, stdin -> pipe
#ifdef _WIN32
#include <windows.h>
#endif

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "flags.hpp"
#include "npipe/anonymous_pipe.hpp"
#include "npipe/errors.hpp"
#include "npipe/process.hpp"
#include "npipe/relay.hpp"

namespace npipe::cli {
namespace {

// What --help says a handle is, and how a pipe's capacity is asked for, on this platform.
#ifdef _WIN32
constexpr const char* handle_kind = "handle value";
constexpr const char* capacity_text = "Pipe capacity (CreatePipe's size; default: the system's)";
constexpr const char* status_text = "npipe exits with CMD's exit code.";
#else
constexpr const char* handle_kind = "descriptor number";
constexpr const char* capacity_text = "Pipe capacity (F_SETPIPE_SZ; default: the kernel's 64 KiB)";
constexpr const char* status_text =
    "npipe exits with CMD's status (128+N when signal N killed it).";
#endif

// Our standard stream `n` (0, 1, 2) as the platform's handle.
native_handle_type stdio_handle(int n) {
#ifdef _WIN32
    return ::GetStdHandle(n == 0   ? STD_INPUT_HANDLE
                          : n == 1 ? STD_OUTPUT_HANDLE
                                   : STD_ERROR_HANDLE);
#else
    return n;
#endif
}

// Copies stdin into the pipe or the pipe to stdout, whichever way it flows (npipe::relay).
// Returns an error message, or "" when the copy ended as it should: a reader that stops reading
// early (the pipe's or our stdout's) is its own business.
std::string copy_stdio(pipe_stream& pipe) {
    relay_result r = relay(pipe, stdio_handle(0), stdio_handle(1));
    switch (r.end) {
        case relay_end::completed:
        case relay_end::peer_closed:
        case relay_end::output_closed:
            return {};
        case relay_end::failed:
            return std::string(r.operation) + ": " + r.error.message();
        default:
            return r.describe("");
    }
}

// $NPIPE_ANON_HANDLE, for children that take the handle from it (sh -c '... $NPIPE_ANON_HANDLE')
// rather than from a {} argument: set in our environment, which the child gets a copy of.
void export_handle(const std::string& handle) {
#ifdef _WIN32
    ::SetEnvironmentVariableA("NPIPE_ANON_HANDLE", handle.c_str());
#else
    ::setenv("NPIPE_ANON_HANDLE", handle.c_str(), 1);
#endif
}

// The parent: a pipe in `direction` (out: send, in: recv), CMD started on its client end,
// then the copy, then CMD's exit status as ours.
void run_parent(pipe_direction direction, std::vector<std::string> command,
                std::size_t buffer_size) {
    if (command.empty())
        throw CLI::RequiredError("CMD");
    bool sending = direction == pipe_direction::out;
    anonymous_pipe_server pipe(direction, handle_inheritability::none, buffer_size);
    std::string handle = pipe.get_client_handle_as_string();
    for (auto& arg : command) {
        if (arg == "{}")
            arg = handle;
    }
    export_handle(handle);

    process_options options;
    options.inherit_fds = {pipe.client_handle()};
    // The stream npipe is copying stays npipe's. With send the child must not read our stdin
    // (it would take bytes meant for the pipe): its stdin is an empty pipe, whose writer we
    // close once it has started. With recv its stdout goes to our stderr, so nothing it prints
    // mixes with the data.
    std::optional<anonymous_pipe_server> empty_input;
    if (sending) {
        empty_input.emplace(pipe_direction::out);
        options.stdin_fd = empty_input->client_handle();
    } else {
        options.stdout_fd = stdio_handle(2);
    }

    child_process child = spawn_command(command, std::move(options));
    empty_input.reset();
    // From here the child holds the only copy of its end: it sees end of stream when we close
    // ours, and our writes fail instead of blocking if it goes away.
    pipe.dispose_local_copy_of_client_handle();

    std::string failure = copy_stdio(pipe);
    pipe.close();
    exit_status status = child.wait();
    if (!failure.empty())
        throw exit_request{1, failure};
    if (status.shell_code() != 0)
        throw exit_request{status.shell_code(), ""};
}

// The child: the inherited handle, read to stdout or written from stdin.
void run_child(pipe_direction direction, const std::string& handle) {
    std::string failure;
    try {
        anonymous_pipe_client pipe(direction, handle);
        failure = copy_stdio(pipe);
    } catch (const pipe_error& e) {
        throw exit_request{1, e.what()};
    }
    if (!failure.empty())
        throw exit_request{1, "handle " + handle + ": " + failure};
}

void add_parent_command(CLI::App& anon, const std::string& name, pipe_direction direction,
                        const std::string& description) {
    auto* sub = anon.add_subcommand(name, description);
    auto buffer_size = std::make_shared<std::size_t>(0);
    add_size_option(sub, "--buffer-size", *buffer_size, capacity_text);
    // Everything from CMD on is CMD's, options included (`npipe anon send cat --help`): a prefix
    // command hands it all over. The CMD positional never takes a value (its check fails, so
    // validate_positionals skips it); it is there so that CLI11 keeps a `--` in this subcommand
    // instead of passing it up to `anon`.
    sub->prefix_command();
    sub->validate_positionals();
    sub->add_option("CMD", "The command to start and its arguments (may follow --)")
        ->check(CLI::Validator([](std::string&) { return std::string("not parsed here"); }, ""));
    sub->footer(std::string("CMD runs with every argument {} replaced by the pipe's handle (a ") +
                handle_kind +
                ", also in $NPIPE_ANON_HANDLE) and inherits only that handle besides stdin, "
                "stdout and stderr. " +
                status_text);
    sub->callback([sub, direction, buffer_size] {
        auto command = sub->remaining();
        if (!command.empty() && command.front() == "--")
            command.erase(command.begin());
        else if (!command.empty() && command.front().starts_with("-"))
            throw CLI::ExtrasError(sub->get_name(), {command.front()});
        run_parent(direction, std::move(command), *buffer_size);
    });
}

void add_child_command(CLI::App& anon, const std::string& name, pipe_direction direction,
                       const std::string& description) {
    auto* sub = anon.add_subcommand(name, description);
    auto handle = std::make_shared<std::string>();
    sub->add_option("HANDLE", *handle,
                    std::string("The inherited pipe's ") + handle_kind + " ({} of send/recv)")
        ->required();
    sub->callback([direction, handle] { run_child(direction, *handle); });
}

}  // namespace

void add_anon_command(CLI::App& app) {
    auto* anon = app.add_subcommand(
        "anon", "Anonymous pipes to a child process (.NET's AnonymousPipeServerStream)");
    anon->require_subcommand(1);
#ifdef _WIN32
    anon->footer(R"(Examples:
  npipe anon send -- npipe anon read {} < file     the child prints the file
  npipe anon recv -- npipe anon write {} < file    the same the other way
  npipe anon send --buffer-size 1M -- consumer.exe {})");
#else
    anon->footer(R"(Examples:
  npipe anon send -- npipe anon read {} < file     the child prints the file
  npipe anon recv -- sh -c 'echo hi >&$NPIPE_ANON_HANDLE'
  npipe anon send --buffer-size 1M -- ./consumer {})");
#endif
    add_parent_command(*anon, "send", pipe_direction::out,
                       "Start CMD on an anonymous pipe and copy stdin into it (CMD's stdin is "
                       "empty)");
    add_parent_command(*anon, "recv", pipe_direction::in,
                       "Start CMD on an anonymous pipe and copy what it writes there to stdout "
                       "(CMD's stdout goes to stderr)");
    add_child_command(*anon, "read", pipe_direction::in,
                      "Copy the inherited anonymous pipe HANDLE to stdout (the child of send)");
    add_child_command(*anon, "write", pipe_direction::out,
                      "Copy stdin to the inherited anonymous pipe HANDLE (the child of recv)");
}

}  // namespace npipe::cli
