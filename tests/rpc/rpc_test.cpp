// npipe::rpc in-process: the framings (sans-I/O), the JSON entry point, and two connections
// calling each other over a real named pipe.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <thread>

#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/rpc/rpc.hpp"
#include "support/test_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace std::chrono_literals;
using npipe::rpc::errc;
using npipe::rpc::json;
namespace rpc = npipe::rpc;

namespace {

std::vector<std::string> decode_all(rpc::framing f, const std::string& wire, std::size_t chunk,
                                    std::error_code& ec, std::size_t max = 1 << 20) {
    rpc::frame_decoder d(f, max);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < wire.size(); i += chunk) {
        d.feed(std::string_view(wire).substr(i, chunk));
        while (auto doc = d.next(ec))
            out.push_back(*doc);
        if (ec)
            break;
    }
    return out;
}

TEST(RpcFraming, HeaderWritesExactlyContentLength) {
    std::string out;
    rpc::encode_frame(rpc::framing::header, R"({"a":1})", out);
    EXPECT_EQ(out, "Content-Length: 7\r\n\r\n{\"a\":1}");
}

TEST(RpcFraming, EveryFramingRoundTripsInAnyChunking) {
    for (auto f : {rpc::framing::header, rpc::framing::length, rpc::framing::newline}) {
        std::string wire;
        std::vector<std::string> docs = {R"({"x":"é"})", "[1,2,3]", std::string(70000, ' ') + "1"};
        for (auto& d : docs)
            rpc::encode_frame(f, d, wire);
        for (std::size_t chunk : {1u, 3u, 4096u, 1u << 20}) {
            std::error_code ec;
            auto got = decode_all(f, wire, chunk, ec);
            EXPECT_FALSE(ec) << rpc::to_string(f);
            EXPECT_EQ(got, docs) << rpc::to_string(f) << " chunk " << chunk;
        }
    }
}

TEST(RpcFraming, HeaderReadsLenientlyButRequiresCrLf) {
    std::error_code ec;
    auto got = decode_all(rpc::framing::header,
                          "content-length:2\r\nContent-Type: application/vscode-jsonrpc; "
                          "charset=utf-8\r\n\r\n{}CONTENT-LENGTH: 2\r\n\r\n[]",
                          5, ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(got, (std::vector<std::string>{"{}", "[]"}));
    decode_all(rpc::framing::header, "Content-Length: 2\n\n{}", 100, ec);
    EXPECT_EQ(ec, errc::frame_error);
    decode_all(rpc::framing::header, "Content-Type: x\r\n\r\n{}", 100, ec);
    EXPECT_EQ(ec, errc::frame_error);
    decode_all(rpc::framing::header, "Content-Length: 2x\r\n\r\n{}", 100, ec);
    EXPECT_EQ(ec, errc::frame_error);
}

TEST(RpcFraming, OversizedOrEndlessInputIsAFrameErrorWithBoundedBuffer) {
    std::error_code ec;
    decode_all(rpc::framing::header, "Content-Length: 2000\r\n\r\n", 100, ec, 1000);
    EXPECT_EQ(ec, errc::frame_error);
    decode_all(rpc::framing::length, std::string("\x00\x00\x10\x00", 4), 100, ec, 1000);
    EXPECT_EQ(ec, errc::frame_error);
    // Garbage without any line end: refused once past the limit, not buffered forever.
    rpc::frame_decoder d(rpc::framing::newline, 1000);
    for (int i = 0; i < 100 && !ec; ++i) {
        d.feed(std::string(100, 'x'));
        d.next(ec);
    }
    EXPECT_EQ(ec, errc::frame_error);
    EXPECT_EQ(d.buffered(), 0u);
    rpc::frame_decoder h(rpc::framing::header, 1000);
    ec.clear();
    for (int i = 0; i < 100 && !ec; ++i) {
        h.feed(std::string(100, 'y'));
        h.next(ec);
    }
    EXPECT_EQ(ec, errc::frame_error);
}

TEST(RpcFraming, MessageFramingIsOneMessageOneDocument) {
    rpc::frame_decoder d(rpc::framing::message, 100);
    std::error_code ec;
    d.feed("{\"a\":", false);
    EXPECT_FALSE(d.next(ec));
    d.feed("1}", true);
    EXPECT_EQ(d.next(ec).value_or(""), "{\"a\":1}");
    EXPECT_FALSE(d.next(ec));
    EXPECT_FALSE(ec);
}

TEST(RpcMessage, ClassifiesAndRejects) {
    std::error_code ec;
    EXPECT_FALSE(rpc::parse_document("{\"a\":", ec));
    EXPECT_EQ(ec, errc::parse_error);
    EXPECT_FALSE(rpc::parse_document(std::string(1000, '[') + std::string(1000, ']'), ec));
    EXPECT_EQ(ec, errc::parse_error);
    auto doc = rpc::parse_document(
        R"([{"jsonrpc":"2.0","id":1,"method":"m","params":[1]},{"jsonrpc":"2.0","method":"n"},)"
        R"({"jsonrpc":"2.0","id":"x","result":5},{"jsonrpc":"2.0","id":2,"method":3},7])",
        ec);
    ASSERT_TRUE(doc);
    auto m = rpc::classify(*doc);
    ASSERT_EQ(m.size(), 5u);
    EXPECT_EQ(m[0].type, rpc::message::kind::request);
    EXPECT_EQ(m[1].type, rpc::message::kind::notification);
    EXPECT_EQ(m[2].type, rpc::message::kind::response);
    EXPECT_EQ(m[3].type, rpc::message::kind::invalid);
    EXPECT_EQ(m[3].id, 2);
    EXPECT_EQ(m[3].error["code"], -32600);
    EXPECT_EQ(m[4].type, rpc::message::kind::invalid);
    EXPECT_EQ(rpc::classify(json::array())[0].type, rpc::message::kind::invalid);
}

TEST(RpcHandler, ConvertsByPositionAndByNameOrAnswersInvalidParams) {
    npipe::named_pipe_server dummy_server(npipe::test::unique_pipe_name("h"));
    rpc::connection conn(dummy_server);  // never started: only the context's reference
    json id = 1;
    std::string method = "m";
    rpc::call_context ctx(conn, method, id, {});
    auto add = rpc::make_handler([](int a, int b) { return a + b; }, {"a", "b"});
    EXPECT_EQ(add(json::array({2, 3}), ctx), 5);
    EXPECT_EQ(add(json{{"b", 3}, {"a", 4}}, ctx), 7);
    for (json bad : {json::array({1}), json::array({"x", 1}), json{{"a", 1}}, json(nullptr)}) {
        try {
            add(bad, ctx);
            ADD_FAILURE() << bad;
        } catch (const rpc::rpc_error& e) {
            EXPECT_EQ(e.code(), -32602) << bad;
        }
    }
    auto raw = rpc::make_handler([](const json& p) { return p; });
    EXPECT_EQ(raw(json{{"k", 1}}, ctx), (json{{"k", 1}}));
    auto none = rpc::make_handler([] {});
    EXPECT_EQ(none(nullptr, ctx), nullptr);
    EXPECT_THROW(rpc::make_handler([](int) {}, {"a", "b"}), std::invalid_argument);
}

// A server and a client connection over one named pipe, both started.
struct RpcConnection : ::testing::Test {
    std::string name = npipe::test::unique_pipe_name("rpc");
    npipe::named_pipe_server server_pipe{name};
    npipe::named_pipe_client client_pipe{name};
    std::unique_ptr<rpc::connection> server, client;

    void open(rpc::connection_options options = {}) {
        auto accepted = std::async(std::launch::async, [&] { server_pipe.wait_for_connection(); });
        client_pipe.connect(10s);
        accepted.get();
        server = std::make_unique<rpc::connection>(server_pipe, options);
        client = std::make_unique<rpc::connection>(client_pipe, options);
    }
    void start() {
        server->start();
        client->start();
    }
};

TEST_F(RpcConnection, CallsNotificationsErrorsAndCallbacks) {
    open();
    std::promise<std::string> noted;
    server->add_method("add", [](int a, int b) { return a + b; }, {"a", "b"});
    server->add_method("fail", [] {
        throw rpc::rpc_error(4711, "it failed", json{{"detail", "why"}});
    });
    server->add_method("oops", [] { throw std::runtime_error("plain"); });
    server->add_method("note", [&](std::string s) { noted.set_value(s); });
    // The server calls the client back while the client's call is in progress.
    server->add_method("ask_back", [](rpc::call_context& ctx, int x) {
        return ctx.conn().call("twice", json::array({x})).get<int>() + 1;
    });
    client->add_method("twice", [](int x) { return 2 * x; });
    start();
    EXPECT_EQ(client->call("add", json::array({1, 2})), 3);
    EXPECT_EQ(client->call_as<int>("add", json{{"a", 5}, {"b", 6}}), 11);
    EXPECT_EQ(client->call("ask_back", json::array({20})), 41);
    try {
        client->call("fail");
        ADD_FAILURE();
    } catch (const rpc::rpc_error& e) {
        EXPECT_EQ(e.code(), 4711);
        EXPECT_EQ(e.message(), "it failed");
        EXPECT_EQ(e.data(), (json{{"detail", "why"}}));
    }
    std::error_code ec;
    rpc::rpc_error detail(0, "");
    client->call("nope", nullptr, {}, ec, &detail);
    EXPECT_EQ(ec, errc::method_not_found);
    client->call("add", json::array({"one", 2}), {}, ec);
    EXPECT_EQ(ec, errc::invalid_params);
    client->call("oops", nullptr, {}, ec, &detail);
    EXPECT_EQ(ec, errc::internal_error);
    EXPECT_EQ(detail.message(), "plain");
    client->notify("note", json::array({"hello"}));
    auto f = noted.get_future();
    ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
    EXPECT_EQ(f.get(), "hello");
}

TEST_F(RpcConnection, BatchesBothWays) {
    open();
    server->add_method("add", [](int a, int b) { return a + b; });
    start();
    auto results = client->call_batch({{"add", json::array({1, 1})},
                                       {"missing", nullptr},
                                       {"add", json::array({2, 2}), true},
                                       {"add", json::array({3, 3})}});
    ASSERT_EQ(results.size(), 4u);
    EXPECT_EQ(results[0].result, 2);
    EXPECT_EQ(results[1].ec, errc::method_not_found);
    EXPECT_EQ(results[3].result, 6);
}

TEST_F(RpcConnection, ManyThreadsManyOutstandingCallsOutOfOrder) {
    rpc::connection_options options;
    options.handler_threads = 8;
    open(options);
    // Each call waits for its partner (odd waits for even), so responses go out of order.
    std::mutex m;
    std::condition_variable cv;
    std::set<int> arrived;
    server->add_method("echo", [&](int x) {
        std::unique_lock lock(m);
        arrived.insert(x);
        cv.notify_all();
        if (x % 2)
            cv.wait_for(lock, 30s, [&] { return arrived.count(x - 1) > 0; });
        return x;
    });
    start();
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                int x = (t / 2) * 1000 + i * 2 + t % 2;  // threads 2k and 2k+1 are partners
                if (client->call("echo", json::array({x})) == x)
                    ++ok;
            }
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok, 400);
}

TEST_F(RpcConnection, CancellationAndTimeoutBothWays) {
    open();
    std::mutex m;
    std::condition_variable cv;
    int entered = 0, active = 0, cancelled = 0;
    server->add_method("wait_cancel", [&](rpc::call_context& ctx) {
        {
            std::lock_guard lock(m);
            ++entered, ++active;
        }
        cv.notify_all();
        std::mutex wait_mutex;
        std::condition_variable_any wait_cv;
        std::unique_lock wait_lock(wait_mutex);
        wait_cv.wait_for(wait_lock, ctx.stop_token(), 120s, [] { return false; });
        {
            std::lock_guard lock(m);
            --active;
            cancelled += ctx.cancelled();
        }
        cv.notify_all();
        ctx.throw_if_cancelled();
        return 0;
    });
    start();
    std::stop_source stop;
    auto call = std::async(std::launch::async, [&] {
        rpc::call_options o;
        o.stop = stop.get_token();
        return client->call("wait_cancel", nullptr, o);
    });
    {
        std::unique_lock lock(m);
        ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return entered == 1; }));
    }
    stop.request_stop();
    try {
        call.get();
        ADD_FAILURE();
    } catch (const rpc::rpc_error& e) {
        EXPECT_EQ(e.error_code(), errc::request_cancelled);
    }
    {
        std::unique_lock lock(m);
        ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return cancelled == 1 && active == 0; }));
    }
    // A timeout cancels the same way: whether the handler had started or not, nothing is left
    // running (without the cancel it would wait its 120 s).
    rpc::call_options o;
    o.timeout = 50ms;
    std::error_code ec;
    client->call("wait_cancel", nullptr, o, ec);
    EXPECT_EQ(ec, errc::timed_out);
    {
        std::unique_lock lock(m);
        ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return active == 0; }));
    }
    EXPECT_EQ(client->call("$/none", nullptr, {}, ec), nullptr);
    EXPECT_EQ(ec, errc::method_not_found);  // the connection is still up
}

TEST_F(RpcConnection, GarbageGetsParseErrorsThenFramingErrorClosesAndCallsFail) {
    open();
    client->start();
    // The client's peer writes raw garbage in a valid frame, then broken framing.
    std::string wire;
    rpc::encode_frame(rpc::framing::header, "{not json", wire);
    server_pipe.write(wire);
    std::string frame;
    std::array<std::byte, 4096> buf;
    std::string got;
    while (got.find("-32700") == std::string::npos) {
        auto n = server_pipe.read(buf);
        ASSERT_GT(n, 0u);
        got.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    auto pending = std::async(std::launch::async, [&] {
        std::error_code ec;
        client->call("never", nullptr, {}, ec);
        return ec;
    });
    server_pipe.write(std::string("Content-Length: nope\r\n\r\n"));
    client->wait();
    EXPECT_EQ(client->close_reason(), errc::frame_error);
    EXPECT_EQ(pending.get(), errc::connection_closed);
    EXPECT_THROW(client->call("after"), rpc::rpc_error);
}

TEST_F(RpcConnection, PeerClosingFailsOutstandingCalls) {
    open();
    std::promise<void> entered;
    server->add_method("hang", [&](rpc::call_context& ctx) {
        entered.set_value();
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        cv.wait_for(lock, ctx.stop_token(), 30s, [] { return false; });
    });
    start();
    auto call = std::async(std::launch::async, [&] {
        std::error_code ec;
        client->call("hang", nullptr, {}, ec);
        return ec;
    });
    entered.get_future().wait();
    server.reset();  // closes the server's end; its handler is stopped and joined
    EXPECT_EQ(call.get(), errc::connection_closed);
}

// The fuzz target's checks (fuzz/rpc_framing_fuzz.cpp) in every build: on its corpus, then on
// random inputs, and on the corpus with random bytes flipped.
TEST(RpcFuzzChecks, CorpusAndRandomInputs) {
    std::vector<std::string> corpus;
    for (const auto& e : std::filesystem::directory_iterator(NPIPE_RPC_CORPUS)) {
        std::ifstream in(e.path(), std::ios::binary);
        corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    ASSERT_FALSE(corpus.empty());
    std::uint32_t x = 12345;
    auto next = [&] { return x ^= x << 13, x ^= x >> 17, x ^= x << 5; };
    auto run = [](const std::string& s) {
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    };
    for (const auto& c : corpus) {
        run(c);
        for (int i = 0; i < 200; ++i) {
            std::string m = c;
            for (int k = 0; k < 3; ++k)
                m[5 + next() % (m.size() - 5)] = static_cast<char>(next());
            m[0] = static_cast<char>(next());
            run(m);
        }
    }
    for (int i = 0; i < 500; ++i) {
        std::string s(5 + next() % 400, '\0');
        for (auto& ch : s)
            ch = "{}[]\":,\r\n 0123456789abtrue\\Content-Length: "[next() % 35];
        s[0] = static_cast<char>(next());
        run(s);
    }
}

}  // namespace
