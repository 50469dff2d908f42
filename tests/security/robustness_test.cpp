// A server that survives its clients (issue 6): out of descriptors, stalled and idle clients,
// signals, a restarted server, hostile message-mode peers. Multi-process; every test asserts
// the exact outcome and that the server still answers afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>
#include <vector>

#include "npipe/npipe.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using npipe::errc;
using npipe::named_pipe_client;
using npipe::named_pipe_server;
using npipe::pipe_direction;
using npipe::test::child;
using npipe::test::cli;
using npipe::test::unique_pipe_name;
using npipe::test::pipe_io::bytes;
using npipe::test::pipe_io::read_n;

namespace {

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// A message-mode client that speaks raw records: connects to `path` and sends them as they are.
int raw_message_client(const std::string& path, const std::vector<std::string>& records) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    timeval patience{10, 0};  // a read that should see the server drop us fails, never hangs
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    for (auto& r : records)
        EXPECT_EQ(::send(fd, r.data(), r.size(), MSG_NOSIGNAL), static_cast<ssize_t>(r.size()));
    return fd;
}

// A frame header (docs/protocol.md): little-endian, bit 31 "more frames follow".
std::string frame_header(std::uint32_t word) {
    std::string h(4, '\0');
    for (int i = 0; i < 4; ++i)
        h[static_cast<std::size_t>(i)] = static_cast<char>(word >> (8 * i));
    return h;
}

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

// --- Descriptors run out ---------------------------------------------------------------------

TEST(robustness, out_of_descriptors_pauses_accepting_and_recovers) {
    auto name = unique_pipe_name();
    int ready[2], go[2], verdict[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(verdict), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        // The server, in a child whose descriptor limit we lower and then exhaust.
        auto report = [&](char c) { [[maybe_unused]] auto w = ::write(verdict[1], &c, 1); };
        rlimit lim{64, 64};
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0)
            ::_exit(2);
        named_pipe_server server(name);
        // One wait before the descriptors run out: UBSan (in the sanitizer build) checks the
        // dynamic type of each new receiver once, with a pipe(2) we are about to make impossible.
        std::error_code warm;
        server.wait_for_connection(1ms, warm);
        if (warm != errc::timed_out || !(warm == errc::timed_out))
            ::_exit(2);
        std::vector<int> filler;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
            filler.push_back(fd);
        if (errno != EMFILE)
            ::_exit(3);
        [[maybe_unused]] auto w = ::write(ready[1], "r", 1);
        char c;
        if (::read(go[0], &c, 1) != 1)  // the client is connected and queued
            ::_exit(4);
        // No descriptor for the client: the wait must neither fail nor spin.
        double cpu_before = cpu_seconds();
        std::error_code ec;
        server.wait_for_connection(500ms, ec);
        double cpu_used = cpu_seconds() - cpu_before;
        if (ec != errc::timed_out)
            report('f');
        else if (cpu_used > 0.15)
            report('s');  // spinning
        else
            report('p');  // paused
        // Descriptors free up again: the queued client is accepted and served.
        // One for the client, two to spare, two for a sanitizer's pipe(2) (UBSan's memory checks
        // report false errors without them). The takeover watch is the listener's, opened before.
        for (int i = 0; i < 5; ++i) {
            ::close(filler.back());
            filler.pop_back();
        }
        server.wait_for_connection(5s, ec);
        if (ec)
            ::_exit(5);
        if (read_n(server, 5) != "hello")
            ::_exit(6);
        server.write(bytes("world"));
        ::_exit(0);
    }
    // Only the child writes ready and verdict: if it dies, our reads see end of file at once.
    ::close(ready[1]);
    ::close(verdict[1]);
    ::close(go[0]);
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    named_pipe_client client(name);
    client.connect(5s);  // queued in the backlog: connect succeeds before accept
    client.write(bytes("hello"));
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    ASSERT_EQ(::read(verdict[0], &c, 1), 1);
    EXPECT_EQ(c, 'p') << "f: the wait failed, s: it spun";
    EXPECT_EQ(read_n(client, 5), "world");
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    for (int fd : {ready[0], go[1], verdict[0]})
        ::close(fd);
}

// --- Signals -----------------------------------------------------------------------------------

// Plain serve reports the interruption as a shell does (128 + the signal: 130 for Ctrl-C), so
// `npipe serve x > f && use f` never takes a cut-short copy for a whole one; the servers of many
// clients (-- CMD, --echo) end their service with 0.
TEST(robustness, stop_signals_stop_serve_cleanly_and_remove_the_socket) {
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
        // Plain serve, with a client connected and talking.
        auto name = unique_pipe_name();
        child serve({cli(), "serve", name});
        ASSERT_TRUE(npipe::test::wait_for_server(name));
        named_pipe_client client(name);
        client.connect(5s);
        client.write(bytes("ping\n"));
        ASSERT_TRUE(serve.wait_for_output("ping\n"));
        serve.kill(sig);
        EXPECT_EQ(serve.wait(10s), 128 + sig) << serve.err();
        EXPECT_EQ(client.read_byte(), -1);  // the client sees the end at once, no hang
        EXPECT_FALSE(file_exists(npipe::pipe_path(name)));

        // Plain serve waiting for a client.
        auto idle = unique_pipe_name();
        child waiting({cli(), "serve", idle});
        ASSERT_TRUE(npipe::test::wait_for_server(idle));
        waiting.kill(sig);
        EXPECT_EQ(waiting.wait(10s), 128 + sig) << waiting.err();
        EXPECT_FALSE(file_exists(npipe::pipe_path(idle)));

        // serve -- CMD with a client in the middle of a session.
        auto inetd = unique_pipe_name();
        child cmd({cli(), "serve", inetd, "--max-instances", "4", "--", "cat"});
        ASSERT_TRUE(npipe::test::wait_for_server(inetd));
        named_pipe_client c2(inetd);
        c2.connect(5s);
        c2.write(bytes("echo"));
        EXPECT_EQ(read_n(c2, 4), "echo");
        cmd.kill(sig);
        EXPECT_EQ(cmd.wait(10s), 0) << cmd.err();
        EXPECT_EQ(c2.read_byte(), -1);
        EXPECT_FALSE(file_exists(npipe::pipe_path(inetd)));
    }
}

TEST(robustness, sigpipe_never_kills_npipe) {
    // The children start with SIGPIPE at its default (deadly) action (test_support resets it):
    // npipe must not die of it.
    // connect writing to a server that hangs up at once.
    {
        auto name = unique_pipe_name();
        named_pipe_server server(name);
        child connect({cli(), "connect", name});
        server.wait_for_connection(10s);
        server.close();
        std::string block(1 << 20, 'x');
        connect.write_stdin(block);  // may stop early: the child may exit first
        connect.close_stdin();
        auto code = connect.wait(10s);
        ASSERT_TRUE(code.has_value());
        EXPECT_NE(*code, 128 + SIGPIPE);
        EXPECT_LE(*code, 1);
    }
    // serve writing to a client that hangs up at once, and connect whose stdout reader left.
    {
        auto name = unique_pipe_name();
        child serve({cli(), "serve", name});
        ASSERT_TRUE(npipe::test::wait_for_server(name));
        {
            named_pipe_client client(name);
            client.connect(5s);
        }
        std::string block(1 << 20, 'y');
        serve.write_stdin(block);
        serve.close_stdin();
        auto code = serve.wait(10s);
        ASSERT_TRUE(code.has_value());
        EXPECT_NE(*code, 128 + SIGPIPE);
        EXPECT_LE(*code, 1);
    }
    {
        auto name = unique_pipe_name();
        named_pipe_server server(name);
        // connect's stdout is a pipe with no reader left.
        int out[2];
        ASSERT_EQ(::pipe(out), 0);
        pid_t pid = ::fork();
        if (pid == 0) {
            ::signal(SIGPIPE, SIG_DFL);
            ::close(out[0]);
            ::dup2(out[1], 1);
            int null_in = ::open("/dev/null", O_RDONLY);
            ::dup2(null_in, 0);
            auto path = cli();
            ::execl(path.c_str(), path.c_str(), "connect", name.c_str(), nullptr);
            ::_exit(127);
        }
        ::close(out[0]);
        ::close(out[1]);
        server.wait_for_connection(10s);
        server.write(bytes(std::string(4096, 'z')));
        int status = 0;
        ::waitpid(pid, &status, 0);
        EXPECT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
        // Not a signal: an exit, 1 since the pipe's data could not all be written (#17).
        EXPECT_EQ(WEXITSTATUS(status), 1);
    }
}

// --- A restarted server ------------------------------------------------------------------------

TEST(robustness, connect_retry_reconnects_to_a_restarted_server) {
    auto name = unique_pipe_name();
    child connect({cli(), "connect", name, "--retry"});
    {
        named_pipe_server first(name);
        first.wait_for_connection(10s);
        connect.write_stdin("one\n");
        EXPECT_EQ(read_n(first, 4), "one\n");
        first.write(bytes("from first\n"));
        ASSERT_TRUE(connect.wait_for_output("from first\n"));
    }  // the server goes away (its socket file with it)
    named_pipe_server second(name);
    second.wait_for_connection(10s);
    connect.write_stdin("two\n");
    EXPECT_EQ(read_n(second, 4), "two\n");
    second.write(bytes("from second\n"));
    connect.close_stdin();
    EXPECT_EQ(read_n(second, 100), "");  // our input's end reaches the new server
    second.disconnect();
    EXPECT_EQ(connect.wait(10s), 0) << connect.err();
    EXPECT_EQ(connect.out(), "from first\nfrom second\n");
    EXPECT_NE(connect.err().find("reconnecting"), std::string::npos);
}

TEST(robustness, a_killed_server_ends_the_client_promptly) {
    auto name = unique_pipe_name();
    child serve({cli(), "serve", name});
    ASSERT_TRUE(npipe::test::wait_for_server(name));
    child connect({cli(), "connect", name});
    connect.write_stdin("hi\n");
    ASSERT_TRUE(serve.wait_for_output("hi\n"));
    serve.kill(SIGKILL);
    auto start = std::chrono::steady_clock::now();
    // stdin still open: no hang on it; the transfer did not complete, so exit 1 with the reason.
    EXPECT_EQ(connect.wait(10s), 1) << connect.err();
    EXPECT_NE(connect.err().find("closed the pipe"), std::string::npos) << connect.err();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// --- Idle and stalled clients ------------------------------------------------------------------

TEST(robustness, serve_idle_timeout_drops_a_silent_client) {
    auto name = unique_pipe_name();
    child serve({cli(), "serve", name, "--idle-timeout", "0.3"});
    ASSERT_TRUE(npipe::test::wait_for_server(name));
    named_pipe_client squatter(name);
    squatter.connect(5s);
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(squatter.read_byte(), -1);  // dropped, not left hanging
    auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, 250ms);
    EXPECT_LT(waited, 5s);
    EXPECT_EQ(serve.wait(10s), 1);
    EXPECT_NE(serve.err().find("idle timeout"), std::string::npos) << serve.err();
    EXPECT_FALSE(file_exists(npipe::pipe_path(name)));
}

TEST(robustness, serve_idle_timeout_spares_a_client_that_talks) {
    auto name = unique_pipe_name();
    child serve({cli(), "serve", name, "--idle-timeout", "0.5"});
    ASSERT_TRUE(npipe::test::wait_for_server(name));
    named_pipe_client client(name);
    client.connect(5s);
    for (int i = 0; i < 6; ++i) {  // 6 x 0.2 s: longer than the timeout in total, never idle
        std::string line = "line" + std::to_string(i) + "\n";
        client.write(bytes(line));
        ASSERT_TRUE(serve.wait_for_output(line));
        std::this_thread::sleep_for(200ms);
    }
    // Our end first: a client that closes while serve's input is still open cut the transfer
    // short, which is an exit 1 (#17).
    serve.close_stdin();
    EXPECT_EQ(npipe::test::pipe_io::read_to_end(client), "");
    client.close();
    EXPECT_EQ(serve.wait(10s), 0) << serve.err();
}

TEST(robustness, serve_write_timeout_drops_a_client_that_stops_reading) {
    auto name = unique_pipe_name();
    npipe::test::temp_dir dir;
    std::string input = dir.path() + "/big";
    {
        std::ofstream f(input, std::ios::binary);
        f << npipe::test::pattern(16 << 20);
    }
    child serve({"/bin/sh", "-c",
                 "exec '" + cli() + "' serve " + name + " --write-timeout 0.3 < " + input});
    ASSERT_TRUE(npipe::test::wait_for_server(name));
    named_pipe_client reader(name);
    reader.connect(5s);  // ... and never reads
    EXPECT_EQ(serve.wait(10s), 1);
    EXPECT_NE(serve.err().find("write timeout"), std::string::npos) << serve.err();
    EXPECT_FALSE(file_exists(npipe::pipe_path(name)));
}

TEST(robustness, serve_cmd_timeouts_free_the_instance_for_the_next_client) {
    auto name = unique_pipe_name();
    // One instance: a silent client would hold it for ever without the idle timeout.
    child serve({cli(), "serve", name, "--idle-timeout", "0.3", "--", "cat"});
    ASSERT_TRUE(npipe::test::wait_for_server(name));
    named_pipe_client squatter(name);
    squatter.connect(5s);
    named_pipe_client next(name);
    next.connect(5s);  // queued behind the squatter
    next.write(bytes("served"));
    EXPECT_EQ(read_n(next, 6), "served");
    EXPECT_EQ(squatter.read_byte(), -1);  // cat's read timed out and it went away
    next.close();
    serve.kill(SIGTERM);
    EXPECT_EQ(serve.wait(10s), 0) << serve.err();
}

// --- Hostile message-mode clients (the synchronous library server) -----------------------------

TEST(robustness, message_server_drops_hostile_clients_and_keeps_serving) {
    auto name = unique_pipe_name();
    npipe::pipe_options options;
    options.max_message_size = 1024;
    named_pipe_server server(name, pipe_direction::in_out, 1, npipe::transmission_mode::message,
                             options);
    std::string path = server.socket_path();
    auto raw_client = [&](const std::vector<std::string>& records) {
        return raw_message_client(path, records);
    };
    auto header = frame_header;
    struct attack {
        const char* what;
        std::vector<std::string> records;
        bool killed;           // the client dies instead of closing
        std::string expected;  // what the server's reads report, in order
    };
    std::vector<attack> attacks = {
        // A rejected message is over once reported; the end of stream after it is plain.
        {"oversize length claim", {header(0x7fffffff) + "abc"}, false, "too_large eof "},
        // Message read mode hands out no part of a message the peer never finished.
        {"truncated frame", {header(100) + "only-a-few"}, false, "broken "},
        {"garbage", {std::string("\xff\xfe\x00\x01garbage-garbage", 19)}, false, "too_large eof "},
        {"killed mid-message", {header(0x80000010) + "0123456789abcdef"}, true, "broken "},
    };
    for (auto& a : attacks) {
        int fd = -1;
        pid_t pid = -1;
        if (a.killed) {
            int sent[2];
            ASSERT_EQ(::pipe(sent), 0);
            pid = ::fork();
            if (pid == 0) {
                int c = raw_client(a.records);
                (void)c;
                [[maybe_unused]] auto w = ::write(sent[1], "s", 1);
                ::pause();
                ::_exit(0);
            }
            char c;
            ASSERT_EQ(::read(sent[0], &c, 1), 1);  // its records are queued before it dies
            ::close(sent[0]);
            ::close(sent[1]);
        } else {
            fd = raw_client(a.records);
        }
        server.wait_for_connection(5s);
        if (a.killed) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        } else {
            ::shutdown(fd, SHUT_WR);
        }
        // The server reads until the client's stream fails or ends, never allocating by a claim:
        // no complete message comes out of any attack, and the stream ends in broken_pipe (the
        // peer went away inside a message), after message_too_large for a claim over the limit.
        std::vector<std::byte> buffer(2048);
        std::vector<std::string> outcome;
        for (int i = 0; i < 100; ++i) {
            std::error_code ec;
            auto n = server.read(buffer, ec);
            if (ec) {
                outcome.push_back(ec == errc::message_too_large ? "too_large"
                                  : ec == errc::broken_pipe     ? "broken"
                                                                : ec.message());
                if (ec != errc::message_too_large)
                    break;
                continue;
            }
            if (n == 0 && server.end_of_stream()) {
                outcome.push_back("eof");
                break;
            }
            outcome.push_back(server.is_message_complete() ? "complete" : "partial");
        }
        std::string seen;
        for (auto& o : outcome)
            seen += o + " ";
        EXPECT_EQ(seen, a.expected) << a.what;
        server.disconnect();
        if (fd >= 0)
            ::close(fd);
        // ... and the next, well-behaved client gets its message intact.
        named_pipe_client good(name);
        good.connect(5s);
        good.set_read_mode(npipe::transmission_mode::message);
        server.wait_for_connection(5s);
        good.write(bytes("intact message"));
        std::vector<std::byte> got(64);
        auto n = server.read(got);
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), n), "intact message")
            << "after " << a.what;
        EXPECT_TRUE(server.is_message_complete());
        server.write(bytes("reply"));
        EXPECT_EQ(read_n(good, 5), "reply") << "after " << a.what;
        server.disconnect();
    }
}

// --- The async echo server (`serve --echo`): timeouts and hostile clients ---------------------

namespace {

// A client that echoes through `serve --echo` and checks every byte, as long as `until` is not
// ready: the others must go on being served while the server deals with a bad client. Gives up
// after 20 s, killing the server so that `until` completes and the test fails rather than hangs.
template <typename Future>
int echo_until(named_pipe_client& talker, Future& until, child& serve) {
    auto give_up = std::chrono::steady_clock::now() + 20s;
    int rounds = 0;
    do {
        if (std::chrono::steady_clock::now() > give_up) {
            serve.kill();
            ADD_FAILURE() << "the bad client was not dropped within 20 s";
            break;
        }
        std::string text = "round " + std::to_string(rounds) + ": " +
                           npipe::test::pattern(100 + rounds % 900, rounds + 7);
        talker.write(bytes(text));
        EXPECT_EQ(read_n(talker, text.size()), text) << "round " << rounds;
        ++rounds;
        // A short pause, far below the idle timeout: the talker is never idle.
    } while (until.wait_for(20ms) != std::future_status::ready);
    return rounds;
}

// After the bad clients were dropped: the talker is still served (it was never dropped itself),
// exactly `drops` clients were dropped, the log gives `reason`, and the server stops cleanly.
void expect_served_after_drops(named_pipe_client& talker, child& serve, int drops,
                               const std::string& reason) {
    std::string after = "after the drop";
    talker.write(bytes(after));
    EXPECT_EQ(read_n(talker, after.size()), after);
    EXPECT_EQ(npipe::test::count_of(serve.err(), "dropped a client"), drops) << serve.err();
    EXPECT_NE(serve.err().find(reason), std::string::npos) << serve.err();
    talker.close();
    serve.kill(SIGTERM);
    EXPECT_EQ(serve.wait(10s), 0) << serve.err();
}

std::vector<std::string> echo_server_argv(const std::string& name, bool message,
                                          std::vector<std::string> flags) {
    std::vector<std::string> argv{cli(), "serve", name, "--echo", "--max-instances", "unlimited"};
    if (message)
        argv.push_back("--message");
    argv.insert(argv.end(), flags.begin(), flags.end());
    return argv;
}

}  // namespace

TEST(robustness, echo_idle_timeout_drops_silent_clients_and_serves_the_others) {
    for (bool message : {false, true}) {
        SCOPED_TRACE(message ? "message mode" : "byte mode");
        auto name = unique_pipe_name("echo-idle");
        child serve(echo_server_argv(name, message, {"--idle-timeout", "1"}));
        ASSERT_TRUE(npipe::test::wait_for_server(name)) << serve.err();
        named_pipe_client silent(name);
        silent.connect(5s);
        auto start = std::chrono::steady_clock::now();
        auto silent_end = std::async(std::launch::async, [&] {
            int got = silent.read_byte();
            return std::make_pair(got, std::chrono::steady_clock::now() - start);
        });
        // In message mode also a client that starts a message and never finishes it.
        int trickler = -1;
        if (message)
            trickler = raw_message_client(npipe::pipe_path(name), {frame_header(100) + "abc"});
        named_pipe_client talker(name);
        talker.connect(5s);
        int rounds = echo_until(talker, silent_end, serve);

        auto [got, waited] = silent_end.get();
        EXPECT_EQ(got, -1);  // dropped: end of stream, no byte
        EXPECT_GE(waited, 900ms);
        EXPECT_LT(waited, 10s);
        EXPECT_GT(rounds, 10);  // the talker was served all along
        ASSERT_TRUE(serve.wait_for_error("(idle timeout)", message ? 2 : 1, 10s)) << serve.err();
        if (message) {
            char c;
            EXPECT_EQ(::recv(trickler, &c, 1, 0), 0) << "the half-sent message kept its client";
            ::close(trickler);
        }
        expect_served_after_drops(talker, serve, message ? 2 : 1,
                                  "nothing received for 1000 ms (idle timeout)");
    }
}

TEST(robustness, echo_write_timeout_drops_a_client_that_stops_reading) {
    for (bool message : {false, true}) {
        SCOPED_TRACE(message ? "message mode" : "byte mode");
        auto name = unique_pipe_name("echo-write");
        child serve(echo_server_argv(name, message, {"--write-timeout", "0.5"}));
        ASSERT_TRUE(npipe::test::wait_for_server(name)) << serve.err();
        named_pipe_client hog(name);
        hog.connect(5s);
        // Sends and never reads: the echo backs up in the server until its write stalls.
        auto flood = std::async(std::launch::async, [&] {
            auto chunk = npipe::test::pattern(16 << 10);
            std::error_code ec;
            for (std::size_t sent = 0; !ec && sent < (std::size_t{1} << 30); sent += chunk.size())
                hog.write(bytes(chunk), ec);
            return ec;
        });
        named_pipe_client talker(name);
        talker.connect(5s);
        int rounds = echo_until(talker, flood, serve);

        EXPECT_TRUE(flood.get()) << "the hog was never dropped";
        EXPECT_GT(rounds, 10);
        ASSERT_TRUE(serve.wait_for_error("(write timeout)", 1, 10s)) << serve.err();
        expect_served_after_drops(talker, serve, 1,
                                  "read nothing of our echo for 500 ms (write timeout)");
    }
}

TEST(robustness, echo_message_server_drops_hostile_clients_with_the_reason) {
    auto name = unique_pipe_name("echo-hostile");
    child serve(echo_server_argv(name, true, {}));
    ASSERT_TRUE(npipe::test::wait_for_server(name)) << serve.err();
    auto path = npipe::pipe_path(name);
    named_pipe_client talker(name);
    talker.connect(5s);
    struct attack {
        const char* what;
        std::vector<std::string> records;
        bool closes;         // the client goes away itself instead of being dropped
        std::string reason;  // what the server logs
    };
    std::vector<attack> attacks = {
        {"oversize length claim",
         {frame_header(0x7fffffff) + "abc"},
         false,
         "oversize message (over the " +
             std::to_string(npipe::pipe_options::default_max_message_size) + "-byte limit)"},
        // A record longer than the 64 KiB records allow: the framing is lost.
        {"overlong record", {std::string(70000, 'x')}, false, "malformed frame"},
        {"truncated message",
         {frame_header(100) + "only-a-few"},
         true,
         "the stream ended inside a message"},
    };
    for (auto& a : attacks) {
        SCOPED_TRACE(a.what);
        int fd = raw_message_client(path, a.records);
        if (a.closes) {
            ::shutdown(fd, SHUT_WR);
        } else {
            char c;
            EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "not dropped";
        }
        EXPECT_TRUE(serve.wait_for_error(a.reason, 1, 10s)) << serve.err();
        ::close(fd);
        // The talker's messages are intact, each echoed whole.
        talker.set_read_mode(npipe::transmission_mode::message);
        std::string text = std::string("after ") + a.what + ": " + npipe::test::pattern(3000);
        talker.write(bytes(text));
        std::vector<std::byte> back(8192);
        auto n = talker.read(back);
        EXPECT_TRUE(talker.is_message_complete());
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(back.data()), n), text);
    }
    EXPECT_EQ(npipe::test::count_of(serve.err(), "dropped a client"), 3) << serve.err();
    talker.close();
    serve.kill(SIGTERM);
    EXPECT_EQ(serve.wait(10s), 0) << serve.err();
}
