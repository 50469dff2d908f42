// `npipe anon`: anonymous pipes between npipe and a child process it starts.
//   send [--] CMD [ARGS...]   our stdin -> pipe -> CMD (which gets the handle in place of {})
//   recv [--] CMD [ARGS...]   CMD -> pipe -> our stdout
//   read HANDLE / write HANDLE  the child's side: the inherited pipe -> stdout, stdin -> pipe
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "flags.hpp"
#include "npipe/anonymous_pipe.hpp"
#include "npipe/errors.hpp"
#include "npipe/process.hpp"

extern char** environ;

namespace npipe::cli {
namespace {

// Large enough that a bulk copy costs a handful of system calls per pipe buffer (64 KiB).
constexpr std::size_t copy_chunk = 256 * 1024;

// The pipe_error text without the "pipe '': " an anonymous pipe's (empty) name produces.
class owned_fd {
  public:
    explicit owned_fd(int fd) : fd_(fd) {}
    ~owned_fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

// Returns false with errno set when the descriptor fails (EPIPE: the reader has gone).
bool write_fd(int fd, const std::byte* data, std::size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Copies in_fd into the pipe until in_fd ends or the reader goes away. Returns an error
// message, or "" on success (a reader that stops reading early is its own business).
std::string copy_to_pipe(int in_fd, pipe_stream& pipe) {
    std::vector<std::byte> buffer(copy_chunk);
    for (;;) {
        ssize_t n = ::read(in_fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return std::string("read stdin: ") + std::strerror(errno);
        if (n == 0)
            return {};
        std::error_code ec;
        pipe.write(std::span(buffer.data(), static_cast<std::size_t>(n)), ec);
        if (ec == errc::broken_pipe)
            return {};
        if (ec)
            return "write to the pipe: " + ec.message();
    }
}

// Copies the pipe to out_fd until the writer closes it or out_fd's reader goes away.
std::string copy_from_pipe(pipe_stream& pipe, int out_fd) {
    std::vector<std::byte> buffer(copy_chunk);
    for (;;) {
        std::error_code ec;
        std::size_t n = pipe.read(buffer, ec);
        if (ec)
            return "read from the pipe: " + ec.message();
        if (n == 0)
            return {};
        if (!write_fd(out_fd, buffer.data(), n)) {
            if (errno == EPIPE)
                return {};
            return std::string("write stdout: ") + std::strerror(errno);
        }
    }
}

// The environment with NPIPE_ANON_HANDLE set, for children that take the handle from it
// (sh -c '... $NPIPE_ANON_HANDLE') rather than from a {} argument.
std::vector<std::string> environment_with_handle(const std::string& handle) {
    constexpr std::string_view key = "NPIPE_ANON_HANDLE=";
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        if (!std::string_view(*e).starts_with(key))
            env.emplace_back(*e);
    }
    env.push_back(std::string(key) + handle);
    return env;
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

    process_options options;
    options.inherit_fds = {pipe.client_handle()};
    options.env = environment_with_handle(handle);
    // The stream npipe is copying stays npipe's: with send the child must not read our stdin
    // (it would take bytes meant for the pipe), with recv its stdout goes to our stderr so
    // nothing it prints mixes with the data.
    owned_fd null_input(sending ? ::open("/dev/null", O_RDONLY | O_CLOEXEC) : -1);
    if (sending) {
        if (null_input.get() < 0)
            throw exit_request{1, std::string("open /dev/null: ") + std::strerror(errno)};
        options.stdin_fd = null_input.get();
    } else {
        options.stdout_fd = 2;
    }

    child_process child = spawn_command(command, std::move(options));
    // From here the child holds the only copy of its end: it sees end of stream when we close
    // ours, and our writes fail instead of blocking if it goes away.
    pipe.dispose_local_copy_of_client_handle();

    std::string failure = sending ? copy_to_pipe(0, pipe) : copy_from_pipe(pipe, 1);
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
        failure = direction == pipe_direction::in ? copy_from_pipe(pipe, 1) : copy_to_pipe(0, pipe);
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
    add_size_option(sub, "--buffer-size", *buffer_size,
                    "Pipe capacity (F_SETPIPE_SZ; default: the kernel's 64 KiB)");
    // Everything from CMD on is CMD's, options included (`npipe anon send cat --help`): a prefix
    // command hands it all over. The CMD positional never takes a value (its check fails, so
    // validate_positionals skips it); it is there so that CLI11 keeps a `--` in this subcommand
    // instead of passing it up to `anon`.
    sub->prefix_command();
    sub->validate_positionals();
    sub->add_option("CMD", "The command to start and its arguments (may follow --)")
        ->check(CLI::Validator([](std::string&) { return std::string("not parsed here"); }, ""));
    sub->footer(
        "CMD runs with every argument {} replaced by the pipe's handle (a descriptor number, "
        "also in $NPIPE_ANON_HANDLE) and inherits only that descriptor besides stdin, stdout and "
        "stderr. npipe exits with CMD's status (128+N when signal N killed it).");
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
    sub->add_option("HANDLE", *handle, "The inherited pipe's descriptor number ({} of send/recv)")
        ->required();
    sub->callback([direction, handle] { run_child(direction, *handle); });
}

}  // namespace

void add_anon_command(CLI::App& app) {
    auto* anon = app.add_subcommand(
        "anon", "Anonymous pipes to a child process (.NET's AnonymousPipeServerStream)");
    anon->require_subcommand(1);
    anon->footer(R"(Examples:
  npipe anon send -- npipe anon read {} < file     the child prints the file
  npipe anon recv -- sh -c 'echo hi >&$NPIPE_ANON_HANDLE'
  npipe anon send --buffer-size 1M -- ./consumer {})");
    add_parent_command(*anon, "send", pipe_direction::out,
                       "Start CMD on an anonymous pipe and copy stdin into it (CMD's stdin is "
                       "/dev/null)");
    add_parent_command(*anon, "recv", pipe_direction::in,
                       "Start CMD on an anonymous pipe and copy what it writes there to stdout "
                       "(CMD's stdout goes to stderr)");
    add_child_command(*anon, "read", pipe_direction::in,
                      "Copy the inherited anonymous pipe HANDLE to stdout (the child of send)");
    add_child_command(*anon, "write", pipe_direction::out,
                      "Copy stdin to the inherited anonymous pipe HANDLE (the child of recv)");
}

}  // namespace npipe::cli
