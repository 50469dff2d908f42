// npipe::spawn and child_process: exit statuses, exec failures, exactly the descriptors given,
// stdio redirection, signals, waiting, killing, and no zombie left behind.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "npipe/anonymous_pipe.hpp"
#include "npipe/errors.hpp"
#include "npipe/process.hpp"
#include "support/test_support.hpp"

namespace npipe {
namespace {

using namespace std::chrono_literals;

// A pipe whose ends close with the object.
struct os_pipe {
    int read = -1, write = -1;
    os_pipe() {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe2");
        read = ends[0];
        write = ends[1];
    }
    ~os_pipe() {
        close_read();
        close_write();
    }
    void close_read() {
        if (read >= 0)
            ::close(read);
        read = -1;
    }
    void close_write() {
        if (write >= 0)
            ::close(write);
        write = -1;
    }
};

// Reads what is available up to `n` bytes or end of stream, failing (not hanging) after 20 s.
std::string read_some(int fd, std::size_t n = 4096) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20000) != 1) {
        ADD_FAILURE() << "nothing to read from fd " << fd;
        return {};
    }
    std::string data(n, '\0');
    ssize_t got = ::read(fd, data.data(), n);
    data.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    return data;
}

std::string read_to_end(int fd) {
    std::string data;
    for (;;) {
        std::string chunk = read_some(fd);
        if (chunk.empty())
            return data;
        data += chunk;
    }
}

std::set<int> open_descriptors(pid_t pid) {
    std::set<int> fds;
    for (auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        fds.insert(std::stoi(entry.path().filename().string()));
    return fds;
}

std::string link_of(const std::string& path) {
    std::error_code ec;
    return std::filesystem::read_symlink(path, ec).string();
}

// A field of /proc/PID/status, e.g. "SigIgn".
std::string status_field(pid_t pid, const std::string& name) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with(name + ":")) {
            std::istringstream rest(line.substr(name.size() + 1));
            std::string value;
            rest >> value;
            return value;
        }
    }
    return {};
}

bool signal_in_mask(const std::string& hex_mask, int sig) {
    return (std::stoull(hex_mask, nullptr, 16) >> (sig - 1)) & 1;
}

// A child blocked until we close `input.write`: cat with input as stdin and output as stdout.
child_process blocked_cat(os_pipe& input, os_pipe& output, process_options options = {}) {
    options.stdin_fd = input.read;
    options.stdout_fd = output.write;
    auto child = spawn({"cat"}, options);
    input.close_read();
    output.close_write();
    // Once cat echoes a line it is past its start-up (which may briefly open files) and
    // blocked in read().
    EXPECT_EQ(::write(input.write, "ready\n", 6), 6);
    EXPECT_EQ(read_some(output.read), "ready\n");
    return child;
}

std::error_code spawn_error(std::vector<std::string> argv, process_options options = {},
                            std::string* what = nullptr) {
    try {
        spawn(std::move(argv), std::move(options)).wait();
    } catch (const pipe_error& e) {
        if (what)
            *what = e.what();
        return e.code();
    }
    return {};
}

// No child of this process is left, running or zombie.
bool no_children_left() {
    int status;
    errno = 0;
    return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

TEST(Process, ExitCodesAreReported) {
    EXPECT_EQ(spawn({"/bin/true"}).wait(), exit_status{});
    auto status = spawn({"/bin/sh", "-c", "exit 7"}).wait();
    EXPECT_EQ(status.code, 7);
    EXPECT_EQ(status.signal, 0);
    EXPECT_TRUE(status.exited());
    EXPECT_FALSE(status.success());
    EXPECT_EQ(status.shell_code(), 7);
    EXPECT_TRUE(no_children_left());
}

TEST(Process, DeathBySignalIsReportedWithTheShellsCode) {
    auto status = spawn({"/bin/sh", "-c", "kill -TERM $$"}).wait();
    EXPECT_EQ(status.signal, SIGTERM);
    EXPECT_FALSE(status.exited());
    EXPECT_EQ(status.shell_code(), 128 + SIGTERM);
}

TEST(Process, ProgramsAreFoundThroughPath) {
    EXPECT_EQ(spawn({"sh", "-c", "exit 4"}).wait().code, 4);
}

TEST(Process, ExecFailuresAreReportedAsPipeErrors) {
    std::string what;
    EXPECT_EQ(spawn_error({"/nonexistent/npipe-program"}, {}, &what),
              std::errc::no_such_file_or_directory);
    EXPECT_NE(what.find("/nonexistent/npipe-program"), std::string::npos) << what;
    EXPECT_TRUE(no_children_left()) << "the failed child was not reaped";

    EXPECT_EQ(spawn_error({"npipe-no-such-program-on-path"}, {}, &what),
              std::errc::no_such_file_or_directory);
    EXPECT_NE(what.find("npipe-no-such-program-on-path"), std::string::npos) << what;

    test::temp_dir dir;
    std::string script = dir.path() + "/not-executable";
    std::ofstream(script) << "#!/bin/sh\nexit 0\n";
    ::chmod(script.c_str(), 0644);
    EXPECT_EQ(spawn_error({script}), std::errc::permission_denied);

    process_options elsewhere;
    elsewhere.working_directory = dir.path() + "/missing";
    EXPECT_EQ(spawn_error({"/bin/true"}, elsewhere, &what), std::errc::no_such_file_or_directory);
    EXPECT_NE(what.find("change directory"), std::string::npos) << what;
    EXPECT_TRUE(no_children_left());
}

TEST(Process, InvalidRequestsAreRefusedBeforeStarting) {
    EXPECT_EQ(spawn_error({}), errc::invalid_argument);
    process_options stdio_as_inherit;
    stdio_as_inherit.inherit_fds = {1};
    EXPECT_EQ(spawn_error({"/bin/true"}, stdio_as_inherit), errc::invalid_argument);

    int closed = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(closed);
    process_options closed_inherit;
    closed_inherit.inherit_fds = {closed};
    EXPECT_EQ(spawn_error({"/bin/true"}, closed_inherit), std::errc::bad_file_descriptor);
    process_options closed_stdout;
    closed_stdout.stdout_fd = closed;
    EXPECT_EQ(spawn_error({"/bin/true"}, closed_stdout), std::errc::bad_file_descriptor);
    EXPECT_TRUE(no_children_left());
}

// The check: a child's /proc/PID/fd holds 0, 1, 2 and the pipe end it was given, even
// though this process has inheritable descriptors of all kinds open.
TEST(Process, TheChildInheritsExactlyTheGivenDescriptors) {
    int stray_file = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC: inheritable
    int stray_pipe[2];
    ASSERT_EQ(::pipe(stray_pipe), 0);
    int stray_socket[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, stray_socket), 0);
    anonymous_pipe_server other(pipe_direction::out, handle_inheritability::inheritable);
    anonymous_pipe_server given(pipe_direction::out, handle_inheritability::inheritable);

    os_pipe input, output;
    process_options options;
    options.inherit_fds = {given.client_handle()};
    auto child = blocked_cat(input, output, options);

    auto fds = open_descriptors(child.pid());
    EXPECT_EQ(fds, (std::set<int>{0, 1, 2, given.client_handle()}));
    std::string proc = "/proc/" + std::to_string(child.pid()) + "/fd/";
    std::string self = "/proc/self/fd/";
    EXPECT_EQ(link_of(proc + std::to_string(given.client_handle())),
              link_of(self + std::to_string(given.client_handle())));
    EXPECT_EQ(link_of(proc + "0"), link_of(self + std::to_string(input.write)));

    input.close_write();
    EXPECT_EQ(child.wait(), exit_status{});
    for (int fd : {stray_file, stray_pipe[0], stray_pipe[1], stray_socket[0], stray_socket[1]})
        ::close(fd);
}

TEST(Process, InheritedDescriptorsKeepTheirNumbersEvenWhenCloseOnExecHere) {
    os_pipe channel;  // O_CLOEXEC
    process_options options;
    options.inherit_fds = {channel.write};
    auto child = spawn({"bash", "-c", "echo through >&" + std::to_string(channel.write)}, options);
    channel.close_write();
    EXPECT_EQ(read_to_end(channel.read), "through\n");
    EXPECT_EQ(child.wait(), exit_status{});
}

TEST(Process, OneDescriptorCanBeBothStdinAndStdout) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    process_options options;
    options.stdin_fd = sv[1];
    options.stdout_fd = sv[1];
    auto child = spawn({"/bin/sh", "-c", "read line; echo \"got $line\""}, options);
    ::close(sv[1]);
    ASSERT_EQ(::write(sv[0], "hi\n", 3), 3);
    EXPECT_EQ(read_to_end(sv[0]), "got hi\n");
    EXPECT_EQ(child.wait(), exit_status{});
    ::close(sv[0]);
}

// stderr from our stdout while stdout goes elsewhere: the sources must be read before any of
// 0..2 is replaced in the child (a naive dup2 order would send stderr to the new stdout).
TEST(Process, StdioSourcesMayBeOurOwnStdio) {
    os_pipe captured, elsewhere;
    ::fflush(stdout);
    int saved_stdout = ::dup(1);
    ASSERT_GE(saved_stdout, 0);
    ASSERT_EQ(::dup2(captured.write, 1), 1);
    process_options options;
    options.stdout_fd = elsewhere.write;
    options.stderr_fd = 1;
    child_process child;
    std::string error;
    try {
        child = spawn({"/bin/sh", "-c", "echo out; echo err >&2"}, options);
    } catch (const std::exception& e) {
        error = e.what();
    }
    ::dup2(saved_stdout, 1);
    ::close(saved_stdout);
    ASSERT_EQ(error, "");
    captured.close_write();
    elsewhere.close_write();
    EXPECT_EQ(read_to_end(elsewhere.read), "out\n");
    EXPECT_EQ(read_to_end(captured.read), "err\n");
    EXPECT_EQ(child.wait(), exit_status{});
}

TEST(Process, EnvironmentAndWorkingDirectory) {
    test::temp_dir dir;
    os_pipe output;
    process_options options;
    options.env = std::vector<std::string>{"NPIPE_TEST_VALUE=42"};
    options.working_directory = dir.path();
    options.stdout_fd = output.write;
    auto child = spawn({"sh", "-c", "echo \"$NPIPE_TEST_VALUE:${HOME-unset}:$(pwd)\""}, options);
    output.close_write();
    EXPECT_EQ(read_to_end(output.read),
              "42:unset:" + std::filesystem::canonical(dir.path()).string() + "\n");
    EXPECT_EQ(child.wait(), exit_status{});
}

TEST(Process, TheChildStartsWithDefaultSigpipeAndAnEmptyMask) {
    auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
    auto old_usr2 = ::signal(SIGUSR2, SIG_IGN);
    sigset_t usr1, old_mask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);

    os_pipe input, output;
    auto child = blocked_cat(input, output);
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::signal(SIGPIPE, old_pipe);
    ::signal(SIGUSR2, old_usr2);

    std::string ignored = status_field(child.pid(), "SigIgn");
    std::string blocked = status_field(child.pid(), "SigBlk");
    ASSERT_FALSE(ignored.empty());
    EXPECT_FALSE(signal_in_mask(ignored, SIGPIPE)) << ignored;
    EXPECT_TRUE(signal_in_mask(ignored, SIGUSR2)) << ignored;
    EXPECT_EQ(std::stoull(blocked, nullptr, 16), 0u) << blocked;
    input.close_write();
    EXPECT_EQ(child.wait(), exit_status{});
}

TEST(Process, TryWaitWaitForAndKill) {
    os_pipe input, output;
    auto child = blocked_cat(input, output);
    EXPECT_GT(child.pid(), 0);
    EXPECT_FALSE(child.try_wait().has_value());
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(child.wait_for(50ms).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);

    std::optional<exit_status> seen_by_thread;
    std::thread waiter([&] { seen_by_thread = child.wait(); });
    child.kill(SIGTERM);
    waiter.join();
    exit_status killed{0, SIGTERM};
    EXPECT_EQ(seen_by_thread, killed);
    EXPECT_EQ(child.wait(), killed);
    EXPECT_EQ(child.try_wait(), killed);
    EXPECT_EQ(child.wait_for(0ms), killed);
    child.kill(SIGKILL);  // reaped: a no-op, never a signal to a reused pid
    EXPECT_TRUE(no_children_left());
}

TEST(Process, WaitForReturnsWhenTheChildExits) {
    os_pipe input, output;
    auto child = blocked_cat(input, output);
    input.close_write();
    EXPECT_EQ(child.wait_for(30s), exit_status{});
}

TEST(Process, DestroyingARunningChildKillsAndReapsIt) {
    os_pipe input, output;
    pid_t pid;
    {
        auto child = blocked_cat(input, output);
        pid = child.pid();
    }
    int status;
    errno = 0;
    EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
    EXPECT_TRUE(no_children_left());
}

TEST(Process, MoveAssignmentKillsTheReplacedChild) {
    os_pipe input, output;
    auto child = blocked_cat(input, output);
    pid_t first = child.pid();
    child = spawn({"/bin/true"});
    EXPECT_NE(child.pid(), first);
    EXPECT_EQ(child.wait(), exit_status{});
    EXPECT_TRUE(no_children_left());
    child_process empty;
    EXPECT_EQ(empty.pid(), 0);
    EXPECT_THROW(empty.wait(), pipe_error);
}

}  // namespace
}  // namespace npipe
