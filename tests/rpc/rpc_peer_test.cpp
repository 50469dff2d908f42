// npipe::rpc against unmodified peers, both directions each: StreamJsonRpc (.NET 10) over
// NamedPipeServerStream/NamedPipeClientStream with its header and length framings, and
// vscode-jsonrpc (Node) over its own pipe transports, including the socket path it makes
// itself (reached as a rooted name). The peers are built by the rpc_peers fixture
// (setup_peer.sh); without them the cases skip with the reason, and fail when CI=true.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/rpc/rpc.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using npipe::rpc::errc;
using npipe::rpc::json;
namespace rpc = npipe::rpc;
namespace fs = std::filesystem;

namespace npipe::rpc {
// ctest names the framing, not its bytes.
void PrintTo(framing f, std::ostream* os) {
    *os << to_string(f);
}
}  // namespace npipe::rpc

namespace {

// Why the peer `kind` ("dotnet" or "node") cannot run here; "" when it can.
std::string peer_missing(const std::string& kind) {
    fs::path dir = fs::path(NPIPE_RPC_PEERS) / kind;
    if (fs::exists(dir / "ready"))
        return "";
    std::ifstream skipped(dir / "skipped");
    std::string why;
    if (!std::getline(skipped, why))
        why = "the " + kind + " peer was not set up (" + dir.string() +
              "; run the rpc.setup_* fixture tests)";
    return why;
}

#define REQUIRE_PEER(kind)                       \
    do {                                         \
        auto why = peer_missing(kind);           \
        if (!why.empty()) {                      \
            const char* ci = std::getenv("CI");  \
            if (ci && std::string(ci) == "true") \
                FAIL() << why;                   \
            GTEST_SKIP() << why;                 \
        }                                        \
    } while (0)

std::vector<std::string> dotnet_peer(const std::string& mode, const std::string& name,
                                     rpc::framing f) {
#ifdef NPIPE_DOTNET
    return {
        NPIPE_DOTNET,
        (fs::path(NPIPE_RPC_PEERS) / "dotnet/artifacts/bin/RpcPeers/release/RpcPeers.dll").string(),
        mode, name, std::string(rpc::to_string(f))};
#else
    (void)mode, (void)name, (void)f;
    return {};
#endif
}

npipe::test::child node_peer(std::vector<std::string> args) {
#ifdef NPIPE_NODE
    std::vector<std::string> argv = {NPIPE_NODE, NPIPE_RPC_NODE_PEER};
    argv.insert(argv.end(), args.begin(), args.end());
    npipe::test::child::options o;
    o.env["NODE_PATH"] = (fs::path(NPIPE_RPC_PEERS) / "node/node_modules").string();
    // vscode-jsonrpc puts its own pipes in $XDG_RUNTIME_DIR: keep them in this test's TMPDIR.
    o.env["XDG_RUNTIME_DIR"] = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
    return npipe::test::child(argv, o);
#else
    (void)args;
    return npipe::test::child({"false"});
#endif
}

// The methods the C++ end serves to a peer client (the peer's checks call them).
struct cpp_methods {
    std::mutex m;
    std::condition_variable cv;
    bool saw_cancel = false;

    void install(rpc::connection& c) {
        c.add_method("add", [](int a, int b) { return a + b; }, {"a", "b"});
        c.add_method("fail", [] {
            throw rpc::rpc_error(4711, "it failed", json{{"detail", "why"}});
        });
        c.add_method("ask_back", [](rpc::call_context& ctx, int x) {
            return ctx.conn().call("twice", json::array({x})).get<int>() + 1;
        });
        c.add_method("wait_cancel", [this](rpc::call_context& ctx) {
            ctx.conn().notify("entered");
            std::mutex wait_mutex;
            std::condition_variable_any wait_cv;
            std::unique_lock wait_lock(wait_mutex);
            wait_cv.wait_for(wait_lock, ctx.stop_token(), 60s, [] { return false; });
            {
                std::lock_guard lock(m);
                saw_cancel = ctx.cancelled();
            }
            cv.notify_all();
            ctx.throw_if_cancelled();
            return 0;
        });
        c.add_method("was_cancelled", [this] {
            std::unique_lock lock(m);
            return cv.wait_for(lock, 30s, [&] { return saw_cancel; });
        });
    }
};

// The C++ end's checks against a peer server (add, named params, callback, error with data,
// cancellation from C++).
// The peer server's `slow` sends "entered" once it runs, the cue for the cancel (both peers
// drop a cancel that comes before the request is dispatched), so install this before start().
struct entered_cue {
    std::promise<void> entered;
    void install(rpc::connection& c) {
        c.add_method("entered", [this] { entered.set_value(); });
    }
};

void run_cpp_checks(rpc::connection& c, entered_cue& cue) {
    EXPECT_EQ(c.call("add", json::array({2, 3})), 5);
    EXPECT_EQ(c.call("add", json{{"a", 4}, {"b", 5}}), 9);
    EXPECT_EQ(c.call("ask_back", json::array({20})), 41);
    try {
        c.call("fail");
        ADD_FAILURE() << "fail did not throw";
    } catch (const rpc::rpc_error& e) {
        EXPECT_EQ(e.code(), 4711);
        EXPECT_EQ(e.message(), "it failed");
        EXPECT_EQ(e.data().value("detail", ""), "why") << e.data();
    }
    std::error_code ec;
    c.call("no_such_method", nullptr, {}, ec);
    EXPECT_EQ(ec, errc::method_not_found);
    std::stop_source stop;
    rpc::call_options o;
    o.stop = stop.get_token();
    auto slow = std::async(std::launch::async, [&] {
        std::error_code e;
        c.call("slow", nullptr, o, e);
        return e;
    });
    ASSERT_EQ(cue.entered.get_future().wait_for(60s), std::future_status::ready);
    stop.request_stop();
    EXPECT_EQ(slow.get(), errc::request_cancelled);
    EXPECT_EQ(c.call("was_cancelled"), true);
}

// The C++ end as the client of a peer server: serves the peer's callback, runs the checks,
// then leaves (the peer then exits).
void check_peer_server(npipe::pipe_stream& pipe, rpc::framing f) {
    rpc::connection c(pipe, {.framing = f});
    c.add_method("twice", [](int x) { return 2 * x; });
    entered_cue cue;
    cue.install(c);
    c.start();
    run_cpp_checks(c, cue);
    c.close();
}

class StreamJsonRpc : public ::testing::TestWithParam<rpc::framing> {};

TEST_P(StreamJsonRpc, CppClientCallsCSharpServer) {
    REQUIRE_PEER("dotnet");
    auto name = npipe::test::unique_pipe_name("sjr");
    npipe::test::child peer(dotnet_peer("server", name, GetParam()));
    ASSERT_TRUE(peer.wait_for_output("listening")) << peer.err();
    npipe::named_pipe_client pipe(name);
    pipe.connect(30s);
    check_peer_server(pipe, GetParam());
    EXPECT_EQ(peer.wait(), 0) << peer.out() << peer.err();
}

TEST_P(StreamJsonRpc, CSharpClientCallsCppServer) {
    REQUIRE_PEER("dotnet");
    auto name = npipe::test::unique_pipe_name("sjr");
    npipe::named_pipe_server pipe(name);
    npipe::test::child peer(dotnet_peer("client", name, GetParam()));
    pipe.wait_for_connection(60s);
    rpc::connection c(pipe, {.framing = GetParam()});
    cpp_methods methods;
    methods.install(c);
    c.start();
    ASSERT_EQ(peer.wait(), 0) << peer.out() << peer.err();
    EXPECT_EQ(npipe::test::count_of(peer.out(), "ok: "), 7) << peer.out();
}

INSTANTIATE_TEST_SUITE_P(Rpc, StreamJsonRpc,
                         ::testing::Values(rpc::framing::header, rpc::framing::length),
                         [](const auto& info) { return std::string(rpc::to_string(info.param)); });

TEST(VscodeJsonrpc, CppClientCallsNodeServer) {
    REQUIRE_PEER("node");
    auto name = npipe::test::unique_pipe_name("vsc");
    npipe::named_pipe_server pipe(name);
    auto peer = node_peer({"server", pipe.socket_path()});
    pipe.wait_for_connection(60s);
    check_peer_server(pipe, rpc::framing::header);
    EXPECT_EQ(peer.wait(), 0) << peer.out() << peer.err();
}

TEST(VscodeJsonrpc, NodeClientCallsCppServerOnItsOwnPipePath) {
    REQUIRE_PEER("node");
    auto peer = node_peer({"client"});
    ASSERT_TRUE(peer.wait_for_output("\n")) << peer.err();
    auto out = peer.out();
    ASSERT_EQ(out.rfind("pipe: /", 0), 0u) << out;
    std::string path = out.substr(6, out.find('\n') - 6);
    EXPECT_NE(path.find("/lsp-"), std::string::npos) << path;
    npipe::named_pipe_client pipe(path);  // a rooted name: the socket path itself
    pipe.connect(30s);
    rpc::connection c(pipe);
    cpp_methods methods;
    methods.install(c);
    c.start();
    ASSERT_EQ(peer.wait(), 0) << peer.out() << peer.err();
    EXPECT_EQ(npipe::test::count_of(peer.out(), "ok: "), 7) << peer.out();
}

#ifdef NPIPE_RPC_EXAMPLES_DIR
std::vector<std::string> csharp_example(const std::string& mode, const std::string& name) {
    auto argv = dotnet_peer("example", mode, rpc::framing::header);
    argv.back() = name;  // `example MODE NAME`
    return argv;
}

const char* const example_output = "2 + 3 = 5\nerror 1001: division by zero\n";

TEST(RpcExamples, CppServerCalledFromCSharp) {
    REQUIRE_PEER("dotnet");
    auto name = npipe::test::unique_pipe_name("calc");
    npipe::test::child server(
        {std::string(NPIPE_RPC_EXAMPLES_DIR) + "/example_rpc_calc_server", name});
    ASSERT_TRUE(server.wait_for_output("listening")) << server.err();
    auto client = npipe::test::run(csharp_example("client", name));
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, example_output);
    EXPECT_EQ(server.wait(), 0) << server.err();
}

TEST(RpcExamples, CppClientCallsCSharpServer) {
    REQUIRE_PEER("dotnet");
    auto name = npipe::test::unique_pipe_name("calc");
    npipe::test::child server(csharp_example("server", name));
    ASSERT_TRUE(server.wait_for_output("listening")) << server.err();
    auto client =
        npipe::test::run({std::string(NPIPE_RPC_EXAMPLES_DIR) + "/example_rpc_calc_client", name});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, example_output);
    EXPECT_EQ(server.wait(), 0) << server.err();
}
#endif

}  // namespace
