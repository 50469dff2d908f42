// Transfers through the CLI that do not complete must say so: a non-zero exit and one line
// naming the reason, at both ends; never data lost in silence. Also the peer hanging up, a
// busy or refusing server, --retry's backoff, socket files removed on signals, and `list`.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/named_pipe_server.hpp"
#include "npipe/pipe_name.hpp"
#include "support/test_support.hpp"

namespace npipe::test {
namespace {

using namespace pipe_io;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// A runtime failure: exit 1 and one line on stderr starting "npipe: ".
void expect_failure_line(std::optional<int> code, const std::string& err,
                         const std::string& part = {}) {
    ASSERT_TRUE(code) << "still running; stderr: " << err;
    EXPECT_EQ(*code, 1) << err;
    EXPECT_EQ(line_count(err), 1) << err;
    EXPECT_EQ(err.rfind("npipe: ", 0), 0u) << err;
    EXPECT_TRUE(contains(err, part)) << "'" << part << "' not in: " << err;
}

class TransferCli : public tmpdir_test {};

// ---- Transfers that did not complete ----

TEST_F(TransferCli, ServerKilledMidTransferFailsTheClient) {
    auto name = unique_pipe_name("killed");
    child server({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child client({cli(), "connect", name, "--timeout", "5000"});
    client.write_stdin("a\n");
    ASSERT_TRUE(server.wait_for_output("a\n", 10s)) << server.err() << client.err();
    server.kill(SIGKILL);
    client.write_stdin(pattern(4 * mib, 7));  // the rest of the input: never delivered
    client.close_stdin();
    auto code = client.wait(20s);
    expect_failure_line(code, client.err(), "closed the pipe");
}

TEST_F(TransferCli, ConnectExitsAtOnceWhenTheServerDiesWhileStdinStaysOpen) {
    auto name = unique_pipe_name("hangup");
    child server({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child client({cli(), "connect", name, "--timeout", "5000"});
    client.write_stdin("hello\n");
    ASSERT_TRUE(server.wait_for_output("hello\n", 10s)) << server.err() << client.err();
    server.kill(SIGKILL);
    // The client's stdin stays open (`sleep 30 | npipe connect`): it must not wait for it.
    auto code = client.wait(20s);
    expect_failure_line(code, client.err(), "closed the pipe before our input ended");
}

TEST_F(TransferCli, ClosedOutputFailsBothEnds) {
    auto name = unique_pipe_name("head");
    child server({cli(), "serve", name});
    stdin_feeder feed(server, pattern(64 * mib, 3));
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    auto client = run({"bash", "-c",
                       "'" + cli() + "' connect " + name +
                           " --timeout 5000 </dev/null | head -c 100 >/dev/null; "
                           "exit ${PIPESTATUS[0]}"},
                      {}, 30s);
    EXPECT_EQ(client.exit_code, 1) << client.err;
    EXPECT_EQ(line_count(client.err), 1) << client.err;
    EXPECT_TRUE(contains(client.err, "output was closed")) << client.err;
    auto code = server.wait(20s);
    if (!code)
        server.kill(SIGKILL);  // else the feeder would wait for ever on a server that reads not
    expect_failure_line(code, server.err(), name);
}

TEST_F(TransferCli, CompleteTransfersStillExitZeroBothWays) {
    auto name = unique_pipe_name("ok");
    child server({cli(), "serve", name});
    stdin_feeder feed(server, "to client\n");
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    auto client = run({cli(), "connect", name, "--timeout", "5000"}, "to server\n", 20s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "to client\n");
    EXPECT_EQ(server.wait(20s), 0) << server.err();
    EXPECT_EQ(server.out(), "to server\n");
}

TEST_F(TransferCli, SecondClientOfABusySingleClientServeDoesNotSucceedSilently) {
    auto name = unique_pipe_name("busy");
    child server({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child first({cli(), "connect", name, "--timeout", "5000"});
    first.write_stdin("one\n");
    ASSERT_TRUE(server.wait_for_output("one\n", 10s)) << server.err();
    child second({cli(), "connect", name, "--timeout", "700ms"});
    second.write_stdin("second\n");
    second.close_stdin();
    server.close_stdin();
    first.close_stdin();
    EXPECT_EQ(first.wait(20s), 0) << first.err();
    EXPECT_EQ(server.wait(20s), 0) << server.err();
    auto code = second.wait(20s);
    ASSERT_TRUE(code) << second.err();
    EXPECT_NE(*code, 0) << "the second client's data was lost: " << second.err();
    EXPECT_EQ(line_count(second.err()), 1) << second.err();
    EXPECT_EQ(server.out(), "one\n");
}

TEST_F(TransferCli, RefusedClientSaysSoAndTheServerLogNamesThePipe) {
    if (::geteuid() == 54321)
        GTEST_SKIP() << "needs a uid other than the one the server allows";
    auto name = unique_pipe_name("refuse");
    child server({cli(), "serve", name, "--allow-uid", "54321"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    auto client = run({cli(), "connect", name, "--timeout", "5000"}, "let me in\n", 20s);
    EXPECT_EQ(client.exit_code, 1) << client.err;
    EXPECT_EQ(line_count(client.err), 1) << client.err;
    EXPECT_TRUE(contains(client.err, "refuse")) << client.err;
    ASSERT_TRUE(server.wait_for_error("refused", 1, 10s)) << server.err();
    EXPECT_TRUE(contains(server.err(), "pipe '" + name + "'")) << server.err();
    server.kill(SIGTERM);
}

TEST_F(TransferCli, RetryBacksOffAndGivesUpOnAServerThatRefusesUs) {
    if (::geteuid() == 54321)
        GTEST_SKIP() << "needs a uid other than the one the server allows";
    auto name = unique_pipe_name("retry");
    child server({cli(), "serve", name, "--allow-uid", "54321"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child client({cli(), "connect", name, "--timeout", "5000", "--retry"});
    client.write_stdin("more to come\n");  // and stdin stays open: endless input
    auto code = client.wait(30s);
    ASSERT_TRUE(code) << "retried for ever; stderr:\n" << client.err().substr(0, 2000);
    EXPECT_EQ(*code, 1);
    EXPECT_TRUE(contains(client.err(), "giving up")) << client.err();
    // Backoff: 0.1 + 0.2 + 0.4 + 0.8 s between five attempts, not a thousand connections.
    EXPECT_LE(count_of(client.err(), "reconnecting"), 4) << client.err();
    server.kill(SIGTERM);
}

TEST_F(TransferCli, MessagePipesAreRefusedWithAPointerToChat) {
    auto name = unique_pipe_name("msg");
    child server({cli(), "chat", "server", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    auto client = run({cli(), "connect", name, "--timeout", "5000"}, "m1\nm2\n", 20s);
    EXPECT_EQ(client.exit_code, 1) << client.err;
    EXPECT_TRUE(contains(client.err, "npipe chat client")) << client.err;
    server.kill(SIGTERM);
}

// ---- A terminal user hears what is going on ----

TEST_F(TransferCli, ConnectSaysOnATerminalThatItIsWaitingForTheServer) {
    auto name = unique_pipe_name("typo");
    // script(1) gives the command a terminal; its output is what the terminal showed.
    auto r =
        run({"script", "-qec", "'" + cli() + "' connect " + name + " --timeout 300", "/dev/null"},
            {}, 20s);
    EXPECT_TRUE(contains(r.out, "waiting for a server on pipe '" + name + "'")) << r.out;
    EXPECT_EQ(count_of(r.out, "waiting for a server"), 1) << r.out;
    auto quiet = run(
        {"script", "-qec", "'" + cli() + "' connect -q " + name + " --timeout 300", "/dev/null"},
        {}, 20s);
    EXPECT_FALSE(contains(quiet.out, "waiting")) << quiet.out;
}

// ---- Socket files removed on SIGINT, SIGTERM and SIGHUP ----

TEST_F(TransferCli, ChatAndDemoServersRemoveTheirSocketOnSignals) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        for (const char* kind : {"chat", "demo"}) {
            auto name = unique_pipe_name(kind);
            child server({cli(), kind, "server", name});
            ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
            ::kill(server.pid(), sig);
            auto code = server.wait(10s);
            ASSERT_TRUE(code) << kind << " ignored signal " << sig;
            EXPECT_EQ(*code, 128 + sig) << kind << ": " << server.err();
            EXPECT_FALSE(std::filesystem::exists(pipe_path(name)))
                << kind << " server left its socket after signal " << sig;
            EXPECT_FALSE(std::filesystem::exists(pipe_path(name) + ".npipe-lock"))
                << kind << " server left its lock file after signal " << sig;
        }
    }
}

TEST_F(TransferCli, BenchRemovesItsSocketWhenInterrupted) {
    // Its own process group, so the signal reaches both bench processes, as Ctrl-C does.
    child bench({"setsid", cli(), "bench", "throughput", "--count", "100M", "--force"});
    std::string socket;
    for (auto until = std::chrono::steady_clock::now() + 20s;
         socket.empty() && std::chrono::steady_clock::now() < until;) {
        for (auto& e : std::filesystem::directory_iterator(dir()))
            if (e.path().filename().string().starts_with("CoreFxPipe_npipe-bench-") &&
                e.is_socket())
                socket = e.path();
        if (socket.empty())
            std::this_thread::sleep_for(20ms);
    }
    ASSERT_FALSE(socket.empty()) << bench.err();
    ::kill(-bench.pid(), SIGINT);
    auto code = bench.wait(20s);
    ASSERT_TRUE(code) << bench.err();
    EXPECT_NE(*code, 0);
    for (auto until = std::chrono::steady_clock::now() + 10s;
         std::filesystem::exists(socket) && std::chrono::steady_clock::now() < until;)
        std::this_thread::sleep_for(20ms);  // the server process exits on its own signal
    EXPECT_FALSE(std::filesystem::exists(socket)) << "bench left " << socket;
    EXPECT_FALSE(std::filesystem::exists(socket + ".npipe-lock")) << "bench left its lock file";
}

// ---- list ----

TEST_F(TransferCli, ListShowsOnlyPipesUnlessAskedForAll) {
    auto other = dir() + "/not-a-pipe.sock";
    child rooted({cli(), "serve", other});
    ASSERT_TRUE(wait_for_server(other, 10s)) << rooted.err();
    auto name = unique_pipe_name("shown");
    child server({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    auto plain = run({cli(), "list"}, {}, 10s);
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_TRUE(contains(plain.out, name)) << plain.out;
    EXPECT_FALSE(contains(plain.out, other)) << plain.out;
    auto all = run({cli(), "list", "--all"}, {}, 10s);
    EXPECT_TRUE(contains(all.out, other)) << all.out;
    rooted.kill(SIGTERM);
    server.kill(SIGTERM);
}

TEST_F(TransferCli, ListJsonIsOneArrayWithEscapedNames) {
    auto stale = unique_pipe_name("json\"q");
    make_stale_socket(pipe_path(stale));
    auto r = run({cli(), "list", "--json"}, {}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_FALSE(r.out.empty());
    EXPECT_EQ(r.out.front(), '[') << r.out;
    EXPECT_TRUE(contains(r.out, "json\\\"q")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"state\":\"stale\"")) << r.out;
    auto check = run({"python3", "-c", "import json,sys; json.load(sys.stdin)"}, r.out, 10s);
    EXPECT_EQ(check.exit_code, 0) << check.err << r.out;
}

// #16 item 9: list asks the kernel for its sockets once per listing, not once per file (it was
// files x sockets). Counted in system calls under strace, not timed.
TEST_F(TransferCli, ListAsksTheKernelForItsSocketsOncePerListing) {
    for (int i = 0; i < 30; ++i)
        make_stale_socket(pipe_path(unique_pipe_name("many")));
    auto trace = dir() + "/trace";
    // LeakSanitizer cannot run under ptrace; in the sanitizer build the leak check is off for this
    // one traced run (the other list tests still run it).
    auto r = run({"env", "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1", "strace", "-f", "-e",
                  "trace=socket", "-o", trace, cli(), "list"},
                 {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(line_count(r.out), 31) << r.out;  // a header and the 30 stale pipes
    std::ifstream in(trace);
    int dumps = 0;
    for (std::string line; std::getline(in, line);)
        dumps += line.find("AF_NETLINK") != std::string::npos;
    // One dump for the listening sockets' paths, one for the files' liveness.
    EXPECT_LE(dumps, 2) << "one sock_diag dump per file";
}

TEST_F(TransferCli, ListEscapesControlCharactersInNames) {
    // Any user can name a socket: a newline and an escape sequence must not forge a line.
    auto forged = unique_pipe_name("x\nlive root 0600 forged\x1b[2J");
    make_stale_socket(pipe_path(forged));
    auto r = run({cli(), "list"}, {}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(contains(r.out, "\x1b")) << r.out;
    EXPECT_FALSE(contains(r.out, "\nlive root 0600 forged")) << r.out;
    EXPECT_TRUE(contains(r.out, "\\x0alive root 0600 forged\\x1b[2J")) << r.out;
}

TEST_F(TransferCli, ListCleanRemovesOnlyOwnStaleSockets) {
    auto stale = unique_pipe_name("stale");
    make_stale_socket(pipe_path(stale));
    auto live = unique_pipe_name("live");
    child server({cli(), "serve", live});
    ASSERT_TRUE(wait_for_server(live, 10s)) << server.err();
    auto theirs = unique_pipe_name("theirs");
    make_stale_socket(pipe_path(theirs));
    ASSERT_EQ(::chown(pipe_path(theirs).c_str(), 54321, 54321), 0);
    auto r = run({cli(), "list", "--clean"}, {}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "removed")) << r.out;
    EXPECT_FALSE(std::filesystem::exists(pipe_path(stale)));
    EXPECT_TRUE(std::filesystem::exists(pipe_path(live))) << "a live socket was removed";
    EXPECT_TRUE(std::filesystem::exists(pipe_path(theirs))) << "another user's was removed";
    server.kill(SIGTERM);
    std::filesystem::remove(pipe_path(theirs));
}

}  // namespace
}  // namespace npipe::test
