// npipe::session_supervisor on Windows, and `npipe serve NAME -- CMD` (npipe.exe beside this
// program): a process per client whose stdin and stdout are plain synchronous handles
// (win32_peer.exe's echo reads and writes them with ReadFile/WriteFile), exit codes reported,
// output written just before the command exits delivered whole, wait_for_room, stop (the end of
// the input, then termination after the grace period), kill_all, and the CLI's --max-instances,
// --once and missing command.
// Under Wine, what Wine lacks is skipped with the reason (NPIPE_SKIP_ON_WINE).
#include <windows.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/npipe.hpp"
#include "npipe/session_supervisor.hpp"
#include "support/test_support.hpp"
#include "win_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using npipe::test::unique_pipe_name;
using npipe::test::pipe_io::bytes;
using npipe::test::pipe_io::read_n;
using npipe::test::pipe_io::read_to_end;
using npipe::test::windows::bytes_waiting;
using npipe::test::windows::console_group_process;
using npipe::test::windows::peer_process;
using npipe::test::windows::program_path;

// TerminateProcess's exit code for the end of the grace period and kill_all(): 128 + SIGKILL.
constexpr int terminated = 137;

// win32_peer.exe with `role` and its argument: the command of the sessions.
std::vector<std::string> peer(const std::string& role, const std::string& arg) {
    return {program_path("win32_peer.exe"), role, arg};
}

// An accepted connection and its client, both npipe pipes.
struct connection {
    explicit connection(const std::string& tag)
        : name(unique_pipe_name(tag)), server(name), client(name) {
        client.connect(20s);
        server.wait_for_connection(20s);
    }
    HANDLE handle() const { return server.native_handle(); }
    std::string name;
    npipe::named_pipe_server server;
    npipe::named_pipe_client client;
};

// The sessions' ends as on_end reports them, for the test thread to wait on.
class end_log {
  public:
    npipe::supervisor_options options(std::chrono::milliseconds kill_grace = 30s) {
        npipe::supervisor_options o;
        o.kill_grace = kill_grace;
        o.on_end = [this](const npipe::session_end& e) {
            std::lock_guard lock(mutex_);
            ends_.push_back(e);
            changed_.notify_all();
        };
        return o;
    }
    /// The first `n` ends, waiting up to 60 s for them (fewer when they did not come).
    std::vector<npipe::session_end> wait_for(std::size_t n) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, 60s, [&] { return ends_.size() >= n; });
        return ends_;
    }
    /// The exit code reported for `pid` (-1: none).
    int code_of(npipe::process_id pid) {
        std::lock_guard lock(mutex_);
        for (auto& e : ends_)
            if (e.pid == pid)
                return e.status.code;
        return -1;
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<npipe::session_end> ends_;
};

TEST(SessionSupervisorWin, EachClientGetsItsOwnCommandOnPlainSynchronousStdio) {
    end_log log;
    npipe::session_supervisor sessions(peer("echo", "7"), log.options());
    connection a("sup-a"), b("sup-b");
    auto pid_a = sessions.start(a.handle());
    auto pid_b = sessions.start(b.handle());
    EXPECT_NE(pid_a, pid_b);
    a.server.disconnect();  // the session holds its own copy
    b.server.disconnect();
    EXPECT_EQ(sessions.active(), 2u);
    for (int round = 0; round < 3; ++round) {
        a.client.write(bytes("from a " + std::to_string(round)));
        b.client.write(bytes("from b " + std::to_string(round)));
        EXPECT_EQ(read_n(b.client, 8), "from b " + std::to_string(round));
        EXPECT_EQ(read_n(a.client, 8), "from a " + std::to_string(round));
    }
    // A client that leaves ends its command's input: echo exits with its code, and the
    // connection ends with its output.
    a.client.close();
    auto ends = log.wait_for(1);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].pid, pid_a);
    EXPECT_EQ(ends[0].status.code, 7);
    EXPECT_EQ(ends[0].status.signal, 0);
    b.client.write(bytes("still here"));
    EXPECT_EQ(read_n(b.client, 10), "still here");
    b.client.close();
    sessions.wait_all();
    EXPECT_EQ(sessions.active(), 0u);
    EXPECT_EQ(log.code_of(pid_b), 7);
}

// cmd.exe writes to the stdio itself (its echo), and passes it on to the programs it runs, whose
// exit code is its own.
TEST(SessionSupervisorWin, CmdWritesTheStdioAndPassesItOn) {
    end_log log;
    npipe::session_supervisor says({"cmd", "/c", "echo", "hello"}, log.options());
    connection a("sup-cmd-echo");
    auto pid_a = says.start(a.handle());
    a.server.disconnect();
    EXPECT_EQ(read_to_end(a.client), "hello\r\n");
    says.wait_all();
    EXPECT_EQ(log.code_of(pid_a), 0);

    auto command = peer("echo", "5");
    command.insert(command.begin(), {"cmd", "/c"});
    npipe::session_supervisor runs(command, log.options());
    connection b("sup-cmd-run");
    auto pid_b = runs.start(b.handle());
    b.server.disconnect();
    b.client.write(bytes("through cmd"));
    EXPECT_EQ(read_n(b.client, 11), "through cmd");
    b.client.close();
    runs.wait_all();
    EXPECT_EQ(log.code_of(pid_b), 5);
}

TEST(SessionSupervisorWin, ReportsEachSessionsExitCode) {
    end_log log;
    npipe::session_supervisor three(peer("echo", "3"), log.options());
    npipe::session_supervisor five(peer("echo", "5"), log.options());
    connection a("sup-code-a"), b("sup-code-b");
    auto pid_a = three.start(a.handle());
    auto pid_b = five.start(b.handle());
    a.client.close();
    b.client.close();
    three.wait_all();
    five.wait_all();
    EXPECT_EQ(log.code_of(pid_a), 3);
    EXPECT_EQ(log.code_of(pid_b), 5);
}

// The command's last output is still in its pipe when it exits: the client gets all of it, then
// the end of the stream.
TEST(SessionSupervisorWin, OutputWrittenJustBeforeExitReachesTheClientWhole) {
    constexpr std::size_t size = 3 << 20;
    end_log log;
    npipe::session_supervisor sessions(peer("emit", std::to_string(size)), log.options());
    connection c("sup-emit");
    auto pid = sessions.start(c.handle());
    c.server.disconnect();
    std::string got = read_to_end(c.client);
    ASSERT_EQ(got.size(), size);
    for (std::size_t i = 0; i < size; ++i) {
        auto expected = static_cast<char>(
            static_cast<unsigned char>(i * 131u + (i >> 12) + 2u * 7u));  // win32_peer's pattern 2
        ASSERT_EQ(got[i], expected) << "byte " << i;
    }
    sessions.wait_all();
    EXPECT_EQ(log.code_of(pid), 0);
}

// A byte pipe's half-close (an empty write) is the end of the command's input, which can still
// answer.
TEST(SessionSupervisorWin, TheClientsHalfCloseEndsTheCommandsInput) {
    NPIPE_SKIP_ON_WINE("Wine drops empty writes on byte pipes, npipe's stand-in for a half-close");
    end_log log;
    npipe::session_supervisor sessions(peer("echo", "4"), log.options());
    connection c("sup-half");
    auto pid = sessions.start(c.handle());
    c.server.disconnect();
    c.client.write(bytes("last words"));
    c.client.shutdown_write();
    EXPECT_EQ(read_to_end(c.client), "last words");
    sessions.wait_all();
    EXPECT_EQ(log.code_of(pid), 4);
}

TEST(SessionSupervisorWin, ConstructorRefusesAProgramThatCannotRun) {
    try {
        npipe::session_supervisor sessions({"npipe-test-no-such-program"});
        FAIL() << "no error";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find("npipe-test-no-such-program"), std::string::npos);
    }
    EXPECT_THROW(npipe::session_supervisor(std::vector<std::string>{}), npipe::pipe_error);
    // Found as CreateProcess finds it: in the system directory, ".exe" added.
    EXPECT_NO_THROW(npipe::session_supervisor({"cmd"}));
}

TEST(SessionSupervisorWin, WaitForRoomBlocksWhileFullAndEndsOnStop) {
    npipe::session_supervisor sessions(peer("echo", "0"));
    connection first("sup-room-1");
    sessions.start(first.handle());
    std::atomic<bool> returned{false}, room{false};
    std::thread waiter([&] {
        room = sessions.wait_for_room(1);
        returned = true;
    });
    EXPECT_TRUE(sessions.wait_for_room(2));
    // The session is running for sure once it has answered; the waiter still waits.
    first.client.write(bytes("x"));
    EXPECT_EQ(read_n(first.client, 1), "x");
    EXPECT_FALSE(returned) << "room for one while one runs";
    first.client.close();  // the session ends: room for one
    waiter.join();
    EXPECT_TRUE(room);

    connection second("sup-room-2");
    sessions.start(second.handle());
    std::thread stopped([&] { EXPECT_FALSE(sessions.wait_for_room(1)); });
    sessions.stop();
    stopped.join();
}

// Starts a session that never reads its input and never ends, and waits until it runs.
npipe::process_id start_stubborn(npipe::session_supervisor& sessions, connection& c) {
    auto pid = sessions.start(c.handle());
    c.server.disconnect();
    EXPECT_EQ(read_n(c.client, 6), "ready\n");
    return pid;
}

// Windows has no SIGTERM: stop() ends every command's input at once (echo then exits by itself
// with its own code) and terminates those still running when the grace period is over.
TEST(SessionSupervisorWin, StopEndsTheInputThenTerminatesAfterTheGrace) {
    end_log log;
    npipe::session_supervisor echoes(peer("echo", "9"), log.options(60s));
    npipe::session_supervisor stubborn(peer("stubborn", "x"), log.options(300ms));
    connection e("sup-stop-echo"), s("sup-stop-stubborn");
    auto echo_pid = echoes.start(e.handle());
    e.server.disconnect();
    e.client.write(bytes("hi"));
    EXPECT_EQ(read_n(e.client, 2), "hi");
    auto stubborn_pid = start_stubborn(stubborn, s);
    echoes.stop();
    stubborn.stop();
    EXPECT_TRUE(echoes.stopping());
    echoes.wait_all();  // long before its 60 s: the end of its input ended it
    stubborn.wait_all();
    EXPECT_EQ(log.code_of(echo_pid), 9);
    EXPECT_EQ(log.code_of(stubborn_pid), terminated);
    EXPECT_EQ(read_to_end(e.client), "");
    EXPECT_EQ(read_to_end(s.client), "");

    connection late("sup-stop-late");
    std::error_code ec;
    EXPECT_EQ(echoes.start(late.handle(), ec), 0u);
    EXPECT_EQ(ec, npipe::errc::operation_aborted);
}

TEST(SessionSupervisorWin, KillAllTerminatesWithoutWaitingForTheGrace) {
    end_log log;
    npipe::session_supervisor sessions(peer("stubborn", "x"), log.options(std::chrono::hours(1)));
    connection c("sup-kill");
    auto pid = start_stubborn(sessions, c);
    sessions.stop();
    sessions.kill_all();
    sessions.wait_all();
    EXPECT_EQ(sessions.active(), 0u);
    EXPECT_EQ(log.code_of(pid), terminated);
}

TEST(SessionSupervisorWin, DestructorEndsRunningSessions) {
    HANDLE process = nullptr;
    connection c("sup-dtor");
    {
        npipe::supervisor_options options;
        options.kill_grace = 100ms;
        npipe::session_supervisor sessions(peer("stubborn", "x"), options);
        auto pid = start_stubborn(sessions, c);
        // Opened while the supervisor holds the process: the pid is still this process's.
        process = ::OpenProcess(SYNCHRONIZE, FALSE, static_cast<DWORD>(pid));
        ASSERT_NE(process, nullptr);
    }
    EXPECT_EQ(::WaitForSingleObject(process, 0), WAIT_OBJECT_0) << "still running";
    ::CloseHandle(process);
}

// `npipe.exe serve NAME ARGS -- CMD...`, its output and errors left on ours.
peer_process serve(const std::string& name, std::vector<std::string> flags,
                   const std::vector<std::string>& command) {
    flags.insert(flags.begin(), {"serve", name});
    flags.push_back("--");
    flags.insert(flags.end(), command.begin(), command.end());
    return peer_process(flags, "npipe.exe");
}

TEST(NpipeExeServeCmd, RunsTheCommandForEveryClient) {
    auto name = unique_pipe_name("cli-cmd");
    auto server = serve(name, {"--max-instances", "2"}, peer("echo", "0"));
    npipe::named_pipe_client a(name), b(name);
    a.connect(20s);
    b.connect(20s);
    a.write(bytes("alpha"));
    b.write(bytes("beta"));
    EXPECT_EQ(read_n(b, 4), "beta");
    EXPECT_EQ(read_n(a, 5), "alpha");
    a.close();
    b.write(bytes("again"));
    EXPECT_EQ(read_n(b, 5), "again");
    EXPECT_FALSE(server.wait(0ms).has_value()) << "serve ended with its first client";
}

// As on Linux, CMD runs for one client at a time by default (--max-instances 1): a second client
// connects into the backlog and gets its command when the first one's has ended.
TEST(NpipeExeServeCmd, MaxInstancesOneQueuesTheSecondClient) {
    auto name = unique_pipe_name("cli-cmd-max");
    auto server = serve(name, {"--max-instances", "1"}, peer("echo", "0"));
    npipe::named_pipe_client first(name), second(name);
    first.connect(20s);
    first.write(bytes("one"));
    EXPECT_EQ(read_n(first, 3), "one");
    second.connect(20s);
    second.write(bytes("two"));
    // Had the second client a command, it would answer as fast as the first one's does.
    for (int round = 0; round < 3; ++round) {
        first.write(bytes("more"));
        EXPECT_EQ(read_n(first, 4), "more");
    }
    EXPECT_EQ(bytes_waiting(second), 0u) << "a second command ran with --max-instances 1";
    first.close();  // its command ends: the second client's starts
    EXPECT_EQ(read_n(second, 3), "two");
}

TEST(NpipeExeServeCmd, OnceExitsWithTheCommandsStatus) {
    auto name = unique_pipe_name("cli-cmd-once");
    auto server = serve(name, {"--once"}, peer("echo", "42"));
    npipe::named_pipe_client client(name);
    client.connect(20s);
    client.write(bytes("ping"));
    EXPECT_EQ(read_n(client, 4), "ping");
    client.close();
    EXPECT_EQ(server.wait(60s), 42ul);
}

TEST(NpipeExeServeCmd, AMissingCommandExitsWith127BeforeTakingClients) {
    auto name = unique_pipe_name("cli-cmd-missing");
    auto server = serve(name, {}, {"npipe-test-no-such-program"});
    EXPECT_EQ(server.wait(60s), 127ul);
    npipe::named_pipe_client client(name);
    std::error_code ec;
    client.connect(0ms, ec);
    EXPECT_TRUE(ec) << "a server that cannot run its command took a client";
}

// Ctrl+Break stops serve -- CMD with status 0, as SIGINT does on Linux: the server closes, the
// sessions end (the commands share the console group and get the event too), and a client
// reads the end of its stream.
TEST(NpipeExeServeCmd, CtrlBreakStopsTheServerAndItsSessionsWithStatusZero) {
    auto name = unique_pipe_name("cli-cmd-break");
    std::string line = "\"" + program_path("npipe.exe") + "\" serve " + name + " -- \"" +
                       program_path("win32_peer.exe") + "\" echo 0";
    console_group_process serve(line);
    npipe::named_pipe_client client(name);
    client.connect(20s);
    client.write(bytes("up"));
    EXPECT_EQ(read_n(client, 2), "up");
    auto code = serve.ctrl_break_and_wait(30s);
    if (IsSkipped())
        return;
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0ul);
    EXPECT_EQ(read_to_end(client), "");
}

}  // namespace
