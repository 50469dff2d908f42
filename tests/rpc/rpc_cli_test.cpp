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
#ifdef NPIPE_RPC_CLI_REMOTE
#include "remote/remote_support.hpp"
#endif

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

// What the handler's `note` recorded ("" if nothing within 30 s).
std::string noted(const std::string& dir) {
    auto path = dir + "/noted";
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!std::filesystem::exists(path) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);  // polling for a file the server writes, bounded
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class RpcCli : public npipe::test::tmpdir_test,
               public ::testing::WithParamInterface<std::string> {};

class RpcCliRemote : public npipe::test::tmpdir_test {};

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
    EXPECT_EQ(noted(dir()), R"({"k":7})");
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

#ifdef NPIPE_RPC_CLI_REMOTE
// `rpc call` and `rpc notify` reach a pipe behind `npipe gateway` (on loopback) with `npipe
// connect`'s flags: --server HOST:PORT or NAME //HOST/pipe/PIPE, --ca, --token-file.
TEST_F(RpcCliRemote, CallAndNotifyThroughAGateway) {
    using npipe::test::certs;
    auto name = npipe::test::unique_pipe_name("rrpc");
    npipe::test::child server({cli(), "rpc", "serve", name, "--", write_handler(dir())});
    ASSERT_TRUE(npipe::test::wait_for_server(name)) << server.err();
    npipe::test::child gw({cli(), "gateway", "--listen", "127.0.0.1:0", "--cert",
                           certs().at("gateway.pem"), "--key", certs().at("gateway.key"),
                           "--token-file", certs().at("token"), "--allow", name});
    ASSERT_TRUE(gw.wait_for_output("port ")) << gw.err();
    auto out = gw.out();
    std::string port = std::to_string(std::stoi(out.substr(out.find("port ") + 5)));
    std::vector<std::string> tls = {
        "--ca", certs().at("ca.pem"), "--token-file", certs().at("token"), "--timeout", "20000"};
    auto with_tls = [&](std::vector<std::string> argv) {
        argv.insert(argv.end(), tls.begin(), tls.end());
        return run(argv);
    };
    auto r =
        with_tls({cli(), "rpc", "call", name, "echo", "[1,2]", "--server", "127.0.0.1:" + port});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "[1,2]\n");
    r = with_tls({cli(), "rpc", "call", "//127.0.0.1:" + port + "/pipe/" + name, "fail"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("-32603 it failed"), std::string::npos) << r.err;
    r = with_tls({cli(), "rpc", "notify", name, "note", "[3]", "--server", "localhost:" + port});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(noted(dir()), "[3]");
    // A call's timeout covers the remote connect too: a pipe the gateway does not expose is
    // refused at once.
    r = with_tls({cli(), "rpc", "call", "not-exposed", "echo", "--server", "127.0.0.1:" + port});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("not in --allow"), std::string::npos) << r.err;
    // TLS flags without a remote server would be ignored: a usage error.
    r = run({cli(), "rpc", "call", name, "echo", "--token-file", certs().at("token")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--server"), std::string::npos) << r.err;
    gw.kill(SIGTERM);
    EXPECT_EQ(gw.wait(20s), 0) << gw.err();
    server.kill(SIGTERM);
    EXPECT_EQ(server.wait(), 0) << server.err();
}
#endif

INSTANTIATE_TEST_SUITE_P(Rpc, RpcCli, ::testing::Values("header", "length", "newline", "message"));

TEST(RpcCliUsage, BadParamsAndNoServer) {
    auto r = run({cli(), "rpc", "call", "x", "m", "not json"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run(
        {cli(), "rpc", "call", npipe::test::unique_pipe_name("none"), "m", "--timeout", "100ms"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no server"), std::string::npos) << r.err;
}

// A name another server holds: `rpc serve` fails naming it (it used to abort, leaving its
// signal-watching thread running).
TEST(RpcCliUsage, ServeOnANameInUseFailsNamingIt) {
    auto name = npipe::test::unique_pipe_name("taken");
    npipe::named_pipe_server holder(name);
    auto r = run({cli(), "rpc", "serve", name, "--", "true"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
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
