// npipe::session_supervisor: a process per connection, reaped at once, failing alone, and
// stopped with a grace period.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/errors.hpp"
#include "npipe/session_supervisor.hpp"
#include "support/test_support.hpp"

namespace npipe::test {
namespace {

using clock = std::chrono::steady_clock;

// A connected pair of stream sockets standing in for an accepted connection and its client.
struct connection {
    connection() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        server = fds[0];
        client = fds[1];
    }
    ~connection() {
        close_server();
        if (client >= 0)
            ::close(client);
    }
    void close_server() {
        if (server >= 0)
            ::close(server);
        server = -1;
    }
    void send(const std::string& s) const {
        ASSERT_EQ(::write(client, s.data(), s.size()), static_cast<ssize_t>(s.size()));
    }
    // Reads until `n` bytes or the end; what came.
    std::string receive(std::size_t n) const {
        std::string got;
        char buf[256];
        while (got.size() < n) {
            ssize_t r = ::read(client, buf, std::min(sizeof buf, n - got.size()));
            if (r <= 0)
                break;
            got.append(buf, static_cast<std::size_t>(r));
        }
        return got;
    }
    int server = -1, client = -1;
};

template <class Condition>
bool eventually(Condition done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = clock::now() + timeout;
    for (auto nap = std::chrono::milliseconds(1); !done();
         nap = std::min(nap * 2, std::chrono::milliseconds(50))) {
        if (clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(nap);
    }
    return true;
}

TEST(SessionSupervisor, RunsTheCommandWithTheConnectionAsStdinAndStdout) {
    session_supervisor sessions({"sh", "-c", "read line; echo \"hello $line\""});
    connection c;
    pid_t pid = sessions.start(c.server);
    EXPECT_GT(pid, 0);
    c.close_server();  // the child holds its own copy
    c.send("you\n");
    EXPECT_EQ(c.receive(100), "hello you\n");
}

TEST(SessionSupervisor, ReapsAnEndedSessionAtOnceAndReportsHowItEnded) {
    std::mutex m;
    std::vector<session_end> ends;
    supervisor_options options;
    options.on_end = [&](const session_end& e) {
        std::lock_guard lock(m);
        ends.push_back(e);
    };
    session_supervisor sessions({"sh", "-c", "exit 3"}, options);
    connection c;
    pid_t pid = sessions.start(c.server);
    // Nobody calls into the supervisor: its own thread notices the end.
    ASSERT_TRUE(eventually([&] { return sessions.active() == 0; }));
    std::lock_guard lock(m);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].pid, pid);
    EXPECT_EQ(ends[0].status.code, 3);
    // Reaped: no zombie left behind.
    EXPECT_NE(::kill(pid, 0), 0);
}

TEST(SessionSupervisor, ConstructorRefusesAProgramThatCannotRun) {
    try {
        session_supervisor sessions({"npipe-test-no-such-program"});
        FAIL() << "no error";
    } catch (const pipe_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find("npipe-test-no-such-program"), std::string::npos);
    }
    temp_dir dir;
    auto plain = dir.path() + "/plain";
    std::ofstream(plain) << "#!/bin/sh\n";
    try {
        session_supervisor sessions({plain});
        FAIL() << "no error";
    } catch (const pipe_error& e) {
        EXPECT_EQ(e.code(), std::errc::permission_denied);
    }
    EXPECT_THROW(session_supervisor(std::vector<std::string>{}), pipe_error);
}

TEST(SessionSupervisor, AFailedStartFailsAloneAndTheOtherSessionsGoOn) {
    temp_dir dir;
    auto script = dir.path() + "/svc";
    std::ofstream(script) << "#!/bin/sh\necho up; read a; echo \"got $a\"\n";
    ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
    session_supervisor sessions({script});
    connection running;
    sessions.start(running.server);
    running.close_server();
    ASSERT_EQ(running.receive(3), "up\n");  // the shell has read the script

    ASSERT_EQ(::unlink(script.c_str()), 0);  // an upgrade removes the program
    connection failing;
    std::error_code ec;
    EXPECT_EQ(sessions.start(failing.server, ec), 0);
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
    EXPECT_EQ(sessions.active(), 1u);
    EXPECT_FALSE(sessions.stopping());

    running.send("x\n");
    EXPECT_EQ(running.receive(100), "got x\n");  // to the end: the session ended
    EXPECT_TRUE(eventually([&] { return sessions.active() == 0; }));
}

// Starts a session whose command ignores SIGTERM, and waits until it runs; its pid.
pid_t start_stubborn(session_supervisor& sessions, connection& c) {
    pid_t pid = sessions.start(c.server);
    c.close_server();
    EXPECT_EQ(c.receive(6), "ready\n");
    return pid;
}

const std::vector<std::string> stubborn_command{"sh", "-c", "trap '' TERM; echo ready; read never"};

TEST(SessionSupervisor, StopSendsSigtermThenSigkillAfterTheGrace) {
    std::mutex m;
    std::vector<exit_status> ends;
    supervisor_options options;
    options.kill_grace = std::chrono::milliseconds(200);
    options.on_end = [&](const session_end& e) {
        std::lock_guard lock(m);
        ends.push_back(e.status);
    };
    session_supervisor sessions(stubborn_command, options);
    connection stubborn;
    start_stubborn(sessions, stubborn);
    sessions.stop();
    EXPECT_TRUE(sessions.stopping());
    sessions.wait_all();  // returns: the grace period ends with SIGKILL
    std::lock_guard lock(m);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].signal, SIGKILL);

    connection late;
    std::error_code ec;
    sessions.start(late.server, ec);
    EXPECT_EQ(ec, errc::operation_aborted);
}

TEST(SessionSupervisor, KillAllEndsSessionsWithoutWaitingForTheGrace) {
    supervisor_options options;
    options.kill_grace = std::chrono::hours(1);
    session_supervisor sessions(stubborn_command, options);
    connection c;
    start_stubborn(sessions, c);
    sessions.stop();
    sessions.kill_all();
    sessions.wait_all();
    EXPECT_EQ(sessions.active(), 0u);
}

TEST(SessionSupervisor, WaitForRoomBlocksWhileFullAndEndsOnStop) {
    session_supervisor sessions({"sh", "-c", "read x"});
    connection first;
    sessions.start(first.server);
    std::atomic<bool> returned{false}, room{false};
    std::thread waiter([&] {
        room = sessions.wait_for_room(1);
        returned = true;
    });
    EXPECT_TRUE(sessions.wait_for_room(2));
    EXPECT_FALSE(returned) << "room for one while one runs";
    first.send("\n");  // the session ends: room for one
    ASSERT_TRUE(eventually([&] { return returned.load(); }));
    waiter.join();
    EXPECT_TRUE(room);

    connection second;
    sessions.start(second.server);
    std::thread stopped([&] { EXPECT_FALSE(sessions.wait_for_room(1)); });
    sessions.stop();
    stopped.join();
}

TEST(SessionSupervisor, DestructorEndsRunningSessions) {
    pid_t pid = 0;
    connection c;
    {
        supervisor_options options;
        options.kill_grace = std::chrono::milliseconds(100);
        session_supervisor sessions(stubborn_command, options);
        pid = start_stubborn(sessions, c);
    }
    EXPECT_NE(::kill(pid, 0), 0) << "killed and reaped";
}

}  // namespace
}  // namespace npipe::test
