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
#ifdef NPIPE_HAVE_RPC_ASIO
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/rpc/async_connection.hpp"
#endif

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

// The socket path the vscode-jsonrpc client made and printed as "pipe: PATH" ("" if none).
std::string node_client_pipe(npipe::test::child& peer) {
    if (!peer.wait_for_output("\n"))
        return "";
    auto out = peer.out();
    if (out.rfind("pipe: /", 0) != 0)
        return "";
    return out.substr(6, out.find('\n') - 6);
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
    auto path = node_client_pipe(peer);
    ASSERT_NE(path.find("/lsp-"), std::string::npos) << peer.out() << peer.err();
    npipe::named_pipe_client pipe(path);  // a rooted name: the socket path itself
    pipe.connect(30s);
    rpc::connection c(pipe);
    cpp_methods methods;
    methods.install(c);
    c.start();
    ASSERT_EQ(peer.wait(), 0) << peer.out() << peer.err();
    EXPECT_EQ(npipe::test::count_of(peer.out(), "ok: "), 7) << peer.out();
}

#ifdef NPIPE_HAVE_RPC_ASIO
// The same peers against npipe::rpc::async_connection: the C++ end runs on one io_context
// thread, its handlers plain functions and coroutines.
namespace na = npipe::asio;
constexpr auto use_awaitable = ::asio::use_awaitable;
constexpr auto as_tuple = ::asio::experimental::as_tuple(::asio::use_awaitable);

// g++ 12 miscompiles an initializer list inside a co_await expression: built outside.
json array_of(int x) {
    return json::array({x});
}
json pair_of(int a, int b) {
    return json::array({a, b});
}
json by_name(int a, int b) {
    json o = json::object();
    o["a"] = a;
    o["b"] = b;
    return o;
}

// cpp_methods for an async_connection: ask_back and wait_cancel are coroutines.
struct cpp_async_methods {
    explicit cpp_async_methods(::asio::io_context& io) : seen(io) {}
    ::asio::steady_timer seen;  // was_cancelled waits on it; wait_cancel cancels it
    bool saw_cancel = false;

    void install(rpc::async_connection& c) {
        c.add_method("add", [](int a, int b) { return a + b; }, {"a", "b"});
        c.add_method("fail", [] {
            throw rpc::rpc_error(4711, "it failed", json{{"detail", "why"}});
        });
        c.add_method("ask_back", [](rpc::call_context& ctx, int x) -> ::asio::awaitable<int> {
            json r = co_await ctx.async_conn().async_call("twice", array_of(x), use_awaitable);
            co_return r.get<int>() + 1;
        });
        c.add_method("wait_cancel", [this](rpc::call_context& ctx) -> ::asio::awaitable<int> {
            co_await ctx.async_conn().async_notify("entered", nullptr, use_awaitable);
            ::asio::steady_timer t(co_await ::asio::this_coro::executor, 60s);
            co_await t.async_wait(as_tuple);  // the peer's $/cancelRequest aborts it
            saw_cancel = ctx.cancelled();
            seen.cancel();
            ctx.throw_if_cancelled();
            co_return 0;
        });
        c.add_method("was_cancelled", [this]() -> ::asio::awaitable<bool> {
            if (!saw_cancel) {
                seen.expires_after(30s);
                co_await seen.async_wait(as_tuple);
            }
            co_return saw_cancel;
        });
    }
};

// Serves one client, accepted on `acceptor`, with cpp_async_methods until it leaves.
void serve_one_async(::asio::io_context& io, na::named_pipe_acceptor& acceptor, rpc::framing f) {
    cpp_async_methods methods(io);
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream pipe) {
        ASSERT_FALSE(ec) << ec.message();
        rpc::async_connection c(std::move(pipe), {.framing = f});
        methods.install(c);
        c.async_wait_closed([&](std::error_code) { io.stop(); });
        c.start();
    });
    io.run_for(120s);
}

// run_cpp_checks from an async client, as one coroutine; cancels `slow` through a
// cancellation slot once the peer's method says it runs.
::asio::awaitable<void> async_client_checks(na::pipe_stream pipe, rpc::framing f) {
    rpc::async_connection c(std::move(pipe), {.framing = f});
    ::asio::cancellation_signal cancel;
    c.add_method("twice", [](int x) { return 2 * x; });
    c.add_method("entered", [&] { cancel.emit(::asio::cancellation_type::terminal); });
    c.start();
    json sum = co_await c.async_call("add", pair_of(2, 3), use_awaitable);
    EXPECT_EQ(sum, 5);
    sum = co_await c.async_call("add", by_name(4, 5), use_awaitable);
    EXPECT_EQ(sum, 9);
    json back = co_await c.async_call("ask_back", array_of(20), use_awaitable);
    EXPECT_EQ(back, 41);
    auto [ec, error] = co_await c.async_call("fail", nullptr, as_tuple);
    EXPECT_EQ(ec.value(), 4711);
    auto e = rpc::rpc_error::from_json(error);
    EXPECT_EQ(e.message(), "it failed");
    EXPECT_EQ(e.data().value("detail", ""), "why") << error;
    auto [ec2, error2] = co_await c.async_call("no_such_method", nullptr, as_tuple);
    EXPECT_EQ(ec2, errc::method_not_found) << error2;
    auto [ec3, error3] = co_await c.async_call(
        "slow", nullptr, ::asio::bind_cancellation_slot(cancel.slot(), as_tuple));
    EXPECT_EQ(ec3, errc::request_cancelled) << error3;
    json cancelled = co_await c.async_call("was_cancelled", nullptr, use_awaitable);
    EXPECT_EQ(cancelled, true);
    c.close();
}

// Connects `pipe`, running `io` only until then.
void connect_async(::asio::io_context& io, na::named_pipe_client& pipe) {
    bool connected = false;
    pipe.async_connect(30s, [&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        connected = true;
    });
    while (!connected && io.run_one_for(60s) != 0) {
    }
    io.restart();  // it stopped if it ran out of work
}

void check_peer_server_async(::asio::io_context& io, na::pipe_stream pipe, rpc::framing f) {
    bool done = false;
    ::asio::co_spawn(io, async_client_checks(std::move(pipe), f), [&](std::exception_ptr e) {
        done = true;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                ADD_FAILURE() << "async checks threw: " << x.what();
            }
        }
    });
    io.run_for(120s);
    EXPECT_TRUE(done);
}

class AsyncStreamJsonRpc : public ::testing::TestWithParam<rpc::framing> {};

TEST_P(AsyncStreamJsonRpc, CSharpClientCallsCppAsyncServer) {
    REQUIRE_PEER("dotnet");
    auto name = npipe::test::unique_pipe_name("sjr");
    ::asio::io_context io;
    na::named_pipe_acceptor acceptor(io, name);
    npipe::test::child peer(dotnet_peer("client", name, GetParam()));
    serve_one_async(io, acceptor, GetParam());
    ASSERT_EQ(peer.wait(), 0) << peer.out() << peer.err();
    EXPECT_EQ(npipe::test::count_of(peer.out(), "ok: "), 7) << peer.out();
}

TEST_P(AsyncStreamJsonRpc, CppAsyncClientCallsCSharpServer) {
    REQUIRE_PEER("dotnet");
    auto name = npipe::test::unique_pipe_name("sjr");
    npipe::test::child peer(dotnet_peer("server", name, GetParam()));
    ASSERT_TRUE(peer.wait_for_output("listening")) << peer.err();
    ::asio::io_context io;
    na::named_pipe_client pipe(io, name);
    connect_async(io, pipe);
    check_peer_server_async(io, std::move(pipe), GetParam());
    EXPECT_EQ(peer.wait(), 0) << peer.out() << peer.err();
}

INSTANTIATE_TEST_SUITE_P(Rpc, AsyncStreamJsonRpc,
                         ::testing::Values(rpc::framing::header, rpc::framing::length),
                         [](const auto& info) { return std::string(rpc::to_string(info.param)); });

TEST(AsyncVscodeJsonrpc, CppAsyncClientCallsNodeServer) {
    REQUIRE_PEER("node");
    auto name = npipe::test::unique_pipe_name("vsc");
    ::asio::io_context io;
    na::named_pipe_acceptor acceptor(io, name);
    auto peer = node_peer({"server", acceptor.socket_path()});
    std::optional<na::pipe_stream> accepted;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        accepted.emplace(std::move(p));
    });
    io.run_for(60s);
    ASSERT_TRUE(accepted);
    io.restart();
    check_peer_server_async(io, std::move(*accepted), rpc::framing::header);
    EXPECT_EQ(peer.wait(), 0) << peer.out() << peer.err();
}

TEST(AsyncVscodeJsonrpc, NodeClientCallsCppAsyncServer) {
    REQUIRE_PEER("node");
    auto peer = node_peer({"client"});
    auto path = node_client_pipe(peer);
    ASSERT_NE(path.find("/lsp-"), std::string::npos) << peer.out() << peer.err();
    ::asio::io_context io;
    na::named_pipe_client pipe(io, path);  // a rooted name: the socket path itself
    connect_async(io, pipe);
    cpp_async_methods methods(io);
    rpc::async_connection c(std::move(pipe));
    methods.install(c);
    c.async_wait_closed([&](std::error_code) { io.stop(); });
    c.start();
    io.run_for(120s);
    ASSERT_EQ(peer.wait(), 0) << peer.out() << peer.err();
    EXPECT_EQ(npipe::test::count_of(peer.out(), "ok: "), 7) << peer.out();
}
#endif

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

// `npipe rpc call` from a shell against the unmodified C# StreamJsonRpc server: the result on
// stdout, an application error as a non-zero exit with its code and message on stderr.
TEST(RpcExamples, CliCallsCSharpServer) {
    REQUIRE_PEER("dotnet");
    {
        auto name = npipe::test::unique_pipe_name("calc");
        npipe::test::child server(csharp_example("server", name));
        ASSERT_TRUE(server.wait_for_output("listening")) << server.err();
        auto r = npipe::test::run({npipe::test::cli(), "rpc", "call", name, "add", "[2,3]"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, "5\n") << r.err;
        EXPECT_EQ(server.wait(), 0) << server.err();
    }
    {
        auto name = npipe::test::unique_pipe_name("calc");
        npipe::test::child server(csharp_example("server", name));
        ASSERT_TRUE(server.wait_for_output("listening")) << server.err();
        auto r = npipe::test::run(
            {npipe::test::cli(), "rpc", "call", name, "divide", R"({"a":1,"b":0})"});
        EXPECT_NE(r.exit_code, 0) << r.out;
        EXPECT_NE(r.err.find("1001"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("division by zero"), std::string::npos) << r.err;
        EXPECT_EQ(server.wait(), 0) << server.err();
    }
}

// The synchronous client example and, with npipe::rpc_asio, the asynchronous one.
class RpcExampleClients : public ::testing::TestWithParam<std::string> {};

TEST_P(RpcExampleClients, CppClientCallsCSharpServer) {
    REQUIRE_PEER("dotnet");
    auto name = npipe::test::unique_pipe_name("calc");
    npipe::test::child server(csharp_example("server", name));
    ASSERT_TRUE(server.wait_for_output("listening")) << server.err();
    auto client = npipe::test::run(
        {std::string(NPIPE_RPC_EXAMPLES_DIR) + "/example_rpc_" + GetParam(), name});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, example_output);
    EXPECT_EQ(server.wait(), 0) << server.err();
}

#ifdef NPIPE_HAVE_RPC_ASIO
INSTANTIATE_TEST_SUITE_P(RpcExamples, RpcExampleClients,
                         ::testing::Values("calc_client", "async_calc_client"));
#else
INSTANTIATE_TEST_SUITE_P(RpcExamples, RpcExampleClients, ::testing::Values("calc_client"));
#endif
#endif

}  // namespace
