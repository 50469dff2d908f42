// `npipe serve` when it cannot take a client: a second client of the single-client plain serve
// (issue #17 item 2), and `serve --echo` whose name another server took over (issue #12).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "npipe/named_pipe_client.hpp"
#include "npipe/pipe_name.hpp"
#include "support/takeover.hpp"
#include "support/test_support.hpp"

namespace npipe::test {
namespace {

using namespace pipe_io;
using clock = std::chrono::steady_clock;

TEST(ServeBusy, SecondClientOfPlainServeTimesOutOnTimeAndSaysSo) {
    auto name = unique_pipe_name("busy");
    child server({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child first({cli(), "connect", name});
    ASSERT_TRUE(first.write_stdin("first\n"));
    // Relayed: the server has its one client.
    ASSERT_TRUE(server.wait_for_output("first\n", 20s)) << server.err();

    auto started = clock::now();
    auto second = run({cli(), "connect", name, "--timeout", "700"}, "second\n", 30s);
    auto took = clock::now() - started;
    // Before, its connect succeeded into a backlog nobody would accept from: its data sat there
    // and it waited for a reply until the server exited (exit 0, data lost).
    EXPECT_NE(second.exit_code, 0) << second.err;
    EXPECT_NE(second.exit_code, -1) << "the second client hung";
    EXPECT_GE(took, 700ms);
    EXPECT_LT(took, 700ms + 5s) << "the 700 ms timeout was not honoured";
    EXPECT_GT(count_of(second.err, name), 0) << second.err;
    EXPECT_GT(count_of(second.err, "no server"), 0) << second.err;
    EXPECT_GT(count_of(second.err, "700 ms"), 0) << second.err;

    // The first client's session goes on to its end; the second one's bytes went nowhere.
    ASSERT_TRUE(server.write_stdin("reply\n"));
    ASSERT_TRUE(first.wait_for_output("reply\n", 20s)) << first.err();
    first.close_stdin();
    server.close_stdin();
    EXPECT_EQ(first.wait(20s), 0) << first.err();
    EXPECT_EQ(server.wait(20s), 0) << server.err();
    EXPECT_EQ(server.out(), "first\n");
}

TEST(ServeTakeover, EchoServeSaysItsNameWasTakenOverAndExits) {
    auto name = unique_pipe_name("echo-hijack");
    child server({cli(), "serve", name, "--echo"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    named_pipe_client client(name);
    client.connect(5s);
    client.write(bytes("ping"));
    EXPECT_EQ(read_n(client, 4), "ping");

    std::optional<foreign_server> theirs;
    theirs.emplace(pipe_path(name));
    // Before, it went on serving a socket no new client could reach, and exited 0 on SIGTERM.
    auto code = server.wait(20s);
    ASSERT_TRUE(code) << "serve --echo went on after its name was taken over";
    EXPECT_EQ(*code, 1) << server.err();
    EXPECT_EQ(line_count(server.err()), 1) << server.err();
    EXPECT_GT(count_of(server.err(), "'" + name + "'"), 0) << server.err();
    EXPECT_GT(count_of(server.err(), "replaced by another server"), 0) << server.err();
    EXPECT_TRUE(theirs->still_there()) << "serve --echo removed the other server's socket";
    EXPECT_EQ(read_to_end(client), "");  // its clients were let go
}

}  // namespace
}  // namespace npipe::test
