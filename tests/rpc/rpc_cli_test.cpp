// `npipe rpc call|notify|serve` from a shell's point of view: the binary, its output and exit
// status, against `npipe rpc serve` and against the C++ library's connection.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "npipe/named_pipe_server.hpp"
#include "npipe/rpc/rpc.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using npipe::test::cli;
using npipe::test::run;
namespace rpc = npipe::rpc;

namespace {

// A handler script for `rpc serve`: echo returns its params, fail exits 3 with a message on
// stderr, note records its params in a file, hang never answers (until killed).
std::string write_handler(const std::string& dir) {
    std::string path = dir + "/handler.sh";
    std::ofstream(path) << "#!/bin/sh\n"
                           "method=\"$1\"\n"
                           "case \"$method\" in\n"
                           "  echo) cat ;;\n"
                           "  fail) echo 'it failed' >&2; exit 3 ;;\n"
                           "  note) cat > \"" +
                               dir + "/noted.tmp\" && mv \"" + dir + "/noted.tmp\" \"" + dir +
                               "/noted\" ;;\n"
                               "  hang) exec sleep 600 ;;\n"
                               "  *) printf '\"%s\"' \"$method\" ;;\n"
                               "esac\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return path;
}

class RpcCli : public npipe::test::tmpdir_test,
               public ::testing::WithParamInterface<std::string> {};

TEST_P(RpcCli, ServeAnswersCallAndNotifyThroughACommand) {
    auto name = npipe::test::unique_pipe_name("cli");
    auto framing = GetParam();
    npipe::test::child server(
        {cli(), "rpc", "serve", name, "--framing", framing, "--", write_handler(dir())});
    ASSERT_TRUE(npipe::test::wait_for_server(name)) << server.err();
    auto r = run({cli(), "rpc", "call", name, "echo", R"([1,{"a":"b"}])", "--framing", framing});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "[1,{\"a\":\"b\"}]\n");
    r = run({cli(), "rpc", "call", name, "whoami", "--framing", framing});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "\"whoami\"\n");
    r = run({cli(), "rpc", "call", name, "fail", "--framing", framing});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("-32603 it failed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("\"exit_code\":3"), std::string::npos) << r.err;
    r = run({cli(), "rpc", "notify", name, "note", R"({"k":7})", "--framing", framing});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto noted = dir() + "/noted";
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!std::filesystem::exists(noted) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);  // polling for a file the server writes, bounded
    std::ifstream in(noted);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(content, R"({"k":7})");
    server.kill(SIGTERM);
    EXPECT_EQ(server.wait(), 0) << server.err();
}

TEST_P(RpcCli, TimeoutCancelsTheCallAndKillsTheCommand) {
    auto name = npipe::test::unique_pipe_name("cli");
    auto framing = GetParam();
    npipe::test::child server(
        {cli(), "rpc", "serve", name, "--framing", framing, "--", write_handler(dir())});
    ASSERT_TRUE(npipe::test::wait_for_server(name)) << server.err();
    auto r = run({cli(), "rpc", "call", name, "hang", "--timeout", "300ms", "--framing", framing});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
    // The server is still there for the next client.
    r = run({cli(), "rpc", "call", name, "echo", "[2]", "--framing", framing});
    EXPECT_EQ(r.out, "[2]\n") << r.err;
    server.kill(SIGTERM);
    EXPECT_EQ(server.wait(), 0) << server.err();
}

INSTANTIATE_TEST_SUITE_P(Rpc, RpcCli, ::testing::Values("header", "length", "newline", "message"));

TEST(RpcCliUsage, BadParamsAndNoServer) {
    auto r = run({cli(), "rpc", "call", "x", "m", "not json"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run(
        {cli(), "rpc", "call", npipe::test::unique_pipe_name("none"), "m", "--timeout", "100ms"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no server"), std::string::npos) << r.err;
}

// The CLI calls a C++ connection's typed method: named params, and an error with data.
TEST(RpcCliLibrary, CallsATypedHandler) {
    auto name = npipe::test::unique_pipe_name("lib");
    npipe::named_pipe_server pipe(name);
    auto called = std::async(std::launch::async, [&] {
        return run({cli(), "rpc", "call", name, "add", R"({"a":2,"b":40})"});
    });
    pipe.wait_for_connection(30s);
    rpc::connection c(pipe);
    c.add_method("add", [](int a, int b) { return a + b; }, {"a", "b"});
    c.start();
    auto r = called.get();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "42\n");
}

}  // namespace
