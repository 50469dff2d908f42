// npipe::rpc::async_connection (docs/rpc.md): two async connections over npipe::asio pipes on
// one io_context thread, an async server for a synchronous client, the completion tokens,
// cancellation through slots, stop tokens and timeouts, limits and the connection's end.
#include <functional>

#include "asio/asio_test_support.hpp"
#include "npipe/rpc/async_connection.hpp"

using namespace std::chrono_literals;
using npipe::rpc::errc;
using npipe::rpc::json;
namespace rpc = npipe::rpc;
namespace na = npipe::asio;

namespace {

using npipe_asio_test::as_tuple;
using npipe_asio_test::deferred;
using npipe_asio_test::run;
using npipe_asio_test::spawn;
using npipe_asio_test::use_awaitable;

// A params array (built outside the coroutines: g++ 12 miscompiles an initializer list inside
// a co_await expression).
template <class... A>
json args(A... a) {
    return json::array({json(a)...});
}

// A call's outcome as a future (as_tuple(use_future) needs Asio 1.24).
using outcome = std::pair<std::error_code, json>;
struct outcome_promise {
    std::shared_ptr<std::promise<outcome>> p = std::make_shared<std::promise<outcome>>();
    void operator()(std::error_code ec, json r) const { p->set_value({ec, std::move(r)}); }
};

// A server and a client async connection over one named pipe, both on `io`.
struct async_pair {
    ::asio::io_context& io;
    std::string name = npipe::test::unique_pipe_name("arpc");
    na::named_pipe_acceptor acceptor{io, name};
    std::optional<rpc::async_connection> server, client;

    async_pair(::asio::io_context& i, rpc::connection_options server_options = {},
               rpc::connection_options client_options = {})
        : io(i) {
        na::named_pipe_client pipe(io, name);
        std::optional<na::pipe_stream> accepted;
        bool connected = false;
        acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
            ASSERT_FALSE(ec) << ec.message();
            accepted.emplace(std::move(p));
        });
        pipe.async_connect([&](std::error_code ec) {
            ASSERT_FALSE(ec) << ec.message();
            connected = true;
        });
        io.restart();
        while (!(accepted && connected) && io.run_one_for(30s) != 0) {
        }
        if (!accepted || !connected) {
            ADD_FAILURE() << "no connection";
            return;
        }
        server.emplace(std::move(*accepted), server_options);
        client.emplace(std::move(pipe), client_options);
    }
    void start() {
        server->start();
        client->start();
    }
    void close() {
        client->close();
        server->close();
    }
};

// An event for coroutines on one thread: wait() until set().
struct event {
    explicit event(::asio::io_context& io) : timer(io, ::asio::steady_timer::time_point::max()) {}
    ::asio::steady_timer timer;
    bool is_set = false;
    void set() {
        is_set = true;
        timer.cancel();
    }
    ::asio::awaitable<void> wait() {
        while (!is_set)
            co_await timer.async_wait(as_tuple);
    }
};

TEST(AsyncRpc, CallsNotificationsErrorsAndCallbacksBetweenAsyncConnections) {
    ::asio::io_context io;
    async_pair p(io);
    ASSERT_TRUE(p.server);
    std::vector<std::string> notes;
    p.server->add_method("add", [](int a, int b) { return a + b; }, {"a", "b"});
    p.server->add_method("fail", [] { throw rpc::rpc_error(4711, "it failed", {{"x", 1}}); });
    p.server->add_method("note", [&](std::string s) { notes.push_back(std::move(s)); });
    // A coroutine handler that calls the client back during the call.
    p.server->add_method("ask_back", [](rpc::call_context& ctx, int x) -> ::asio::awaitable<int> {
        json r = co_await ctx.async_conn().async_call("twice", args(x), use_awaitable);
        co_return r.get<int>() + 1;
    });
    p.client->add_method("twice", [](int x) { return 2 * x; });
    p.start();
    auto& c = *p.client;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        json by_name = json::object();
        by_name["a"] = 4;
        by_name["b"] = 5;
        json r1 = co_await c.async_call("add", args(2, 3), use_awaitable);
        json r2 = co_await c.async_call("add", by_name, use_awaitable);
        json r3 = co_await c.async_call("ask_back", args(20), use_awaitable);
        EXPECT_EQ(r1, 5);
        EXPECT_EQ(r2, 9);
        EXPECT_EQ(r3, 41);
        auto [ec, error] = co_await c.async_call("fail", nullptr, as_tuple);
        EXPECT_EQ(ec.value(), 4711);
        EXPECT_EQ(&ec.category(), &rpc::rpc_category());
        auto e = rpc::rpc_error::from_json(error);
        EXPECT_EQ(e.code(), 4711);
        EXPECT_EQ(e.message(), "it failed");
        EXPECT_EQ(e.data().value("x", 0), 1) << e.data();
        auto [ec2, error2] = co_await c.async_call("nope", nullptr, as_tuple);
        EXPECT_EQ(ec2, errc::method_not_found);
        auto [ec3, bad] = co_await c.async_call("add", args(1), as_tuple);
        EXPECT_EQ(ec3, errc::invalid_params) << bad;
        auto [nec] = co_await c.async_notify("note", args("hello"), as_tuple);
        EXPECT_FALSE(nec);
        // Answered after the notification (one connection keeps the peer's order).
        json r4 = co_await c.async_call("add", args(0, 0), use_awaitable);
        EXPECT_EQ(r4, 0);
        p.close();
    });
    run(io);
    EXPECT_EQ(notes, std::vector<std::string>{"hello"});
}

// Sixteen calls in flight at once from one thread; the server answers them in reverse order.
TEST(AsyncRpc, SixteenConcurrentCallsOnOneThreadAnsweredOutOfOrder) {
    constexpr int n = 16;
    ::asio::io_context io;
    async_pair p(io);
    ASSERT_TRUE(p.server);
    std::vector<std::unique_ptr<event>> arrived;
    p.server->add_method("hold", [&](int i) -> ::asio::awaitable<int> {
        arrived.push_back(std::make_unique<event>(io));
        auto& mine = *arrived.back();
        if (static_cast<int>(arrived.size()) == n)
            for (auto it = arrived.rbegin(); it != arrived.rend(); ++it)
                (*it)->set();
        co_await mine.wait();
        co_return i * 10;
    });
    p.start();
    std::vector<int> order;
    int done = 0;
    for (int i = 0; i < n; ++i)
        p.client->async_call("hold", json::array({i}), [&, i](std::error_code ec, json r) {
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(r, i * 10);
            order.push_back(i);
            if (++done == n)
                p.close();
        });
    run(io);
    ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(order.front(), n - 1);  // the last call was answered first
    EXPECT_EQ(order.back(), 0);
}

// A cancellation slot bound to the token cancels the call: the server's handler sees the
// `$/cancelRequest` (stop token and an aborted wait), the call fails with request_cancelled.
TEST(AsyncRpc, CancellationSlotSendsCancelRequest) {
    ::asio::io_context io;
    async_pair p(io);
    ASSERT_TRUE(p.server);
    event entered(io), handler_saw_cancel(io);
    p.server->add_method("hang", [&](rpc::call_context& ctx) -> ::asio::awaitable<void> {
        entered.set();
        ::asio::steady_timer t(co_await ::asio::this_coro::executor, 60s);
        auto [ec] = co_await t.async_wait(as_tuple);
        EXPECT_EQ(ec, ::asio::error::operation_aborted);
        EXPECT_TRUE(ctx.cancelled());
        handler_saw_cancel.set();
        ctx.throw_if_cancelled();
    });
    p.start();
    ::asio::cancellation_signal signal;
    std::error_code result;
    p.client->async_call(
        "hang", nullptr,
        ::asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, json error) {
            result = ec;
            EXPECT_EQ(error["code"], -32800);
        }));
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await entered.wait();
        signal.emit(::asio::cancellation_type::terminal);
        co_await handler_saw_cancel.wait();
        // The connection is still up and in step.
        auto [ec, r] = co_await p.client->async_call("hang_not_found", nullptr, as_tuple);
        EXPECT_EQ(ec, errc::method_not_found);
        p.close();
    });
    run(io);
    EXPECT_EQ(result, errc::request_cancelled);
}

TEST(AsyncRpc, TimeoutAndStopTokenCancelTheCall) {
    ::asio::io_context io;
    async_pair p(io);
    ASSERT_TRUE(p.server);
    int cancelled_handlers = 0;
    event entered(io);
    p.server->add_method("hang", [&](rpc::call_context& ctx) -> ::asio::awaitable<void> {
        entered.set();
        ::asio::steady_timer t(co_await ::asio::this_coro::executor, 60s);
        co_await t.async_wait(as_tuple);
        cancelled_handlers += ctx.cancelled();
    });
    p.start();
    spawn(io, [&]() -> ::asio::awaitable<void> {
        rpc::call_options short_wait;
        short_wait.timeout = 50ms;
        auto [ec, error] = co_await p.client->async_call("hang", nullptr, short_wait, as_tuple);
        EXPECT_EQ(ec, errc::timed_out);
        EXPECT_EQ(error["code"], static_cast<int>(errc::timed_out));
        std::stop_source stop;
        entered.is_set = false;
        rpc::call_options o;
        o.stop = stop.get_token();
        p.client->async_call("hang", nullptr, o, [&](std::error_code e, json) {
            EXPECT_EQ(e, errc::request_cancelled);
            p.close();
        });
        co_await entered.wait();
        stop.request_stop();
    });
    run(io);
    EXPECT_EQ(cancelled_handlers, 2);
}

// use_future from another thread, and deferred; a synchronous client of an async server.
TEST(AsyncRpc, UseFutureDeferredAndASynchronousClient) {
    ::asio::io_context io;
    auto name = npipe::test::unique_pipe_name("arpc");
    na::named_pipe_acceptor acceptor(io, name);
    // Two clients; each connection serves until its client leaves (no handle kept).
    int clients = 0;
    std::function<void(std::error_code, na::pipe_stream)> on_accept = [&](std::error_code ec,
                                                                          na::pipe_stream pipe) {
        ASSERT_FALSE(ec);
        rpc::async_connection server(std::move(pipe));
        server.add_method("add", [](int a, int b) { return a + b; });
        server.set_raw_fallback([](const json& params, rpc::call_context& ctx) {
            return json{{"method", ctx.method()}, {"params", params}};
        });
        server.start();
        if (++clients < 2)
            acceptor.async_accept(on_accept);
    };
    acceptor.async_accept(on_accept);
    auto guard = ::asio::make_work_guard(io);
    std::thread runner([&] { io.run_for(60s); });

    npipe::named_pipe_client sync_pipe(name);
    sync_pipe.connect(30s);
    rpc::connection sync_client(sync_pipe);
    sync_client.start();
    EXPECT_EQ(sync_client.call("add", json::array({20, 22})), 42);
    EXPECT_EQ(sync_client.call("other", json::array({1})),
              (json{{"method", "other"}, {"params", {1}}}));

    na::named_pipe_client pipe(io, name);
    pipe.async_connect(::asio::use_future).get();
    rpc::async_connection client(std::move(pipe));
    client.start();
    EXPECT_EQ(client.async_call("add", json::array({1, 2}), ::asio::use_future).get(), 3);
    outcome_promise failed;
    client.async_call("add", json::array({"one", 2}), failed);
    auto [ec, error] = failed.p->get_future().get();
    EXPECT_EQ(ec, errc::invalid_params);
    EXPECT_EQ(error["code"], -32602);
    auto lazy = client.async_call("add", json::array({5, 6}), deferred);
    EXPECT_EQ(std::move(lazy)(::asio::use_future).get(), 11);

    client.close();
    sync_client.close();
    guard.reset();
    runner.join();
    EXPECT_TRUE(io.stopped());
}

// Limits: a document over max_message_size closes the connection (frame_error); more
// concurrent requests than max_queued_requests are answered server_busy.
TEST(AsyncRpc, LimitsCloseOnOversizeAndAnswerBusy) {
    ::asio::io_context io;
    async_pair p(io, {.max_message_size = 1024, .max_queued_requests = 2});
    ASSERT_TRUE(p.server);
    event release(io);
    p.server->add_method("hold", [&]() -> ::asio::awaitable<int> {
        co_await release.wait();
        co_return 1;
    });
    p.start();
    std::vector<std::error_code> results;
    event all_answered(io);
    for (int i = 0; i < 3; ++i)
        p.client->async_call("hold", nullptr, [&](std::error_code ec, json) {
            results.push_back(ec);
            if (results.size() == 1)
                release.set();
            if (results.size() == 3)
                all_answered.set();
        });
    std::error_code closed_why, call_after_close;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await all_answered.wait();
        auto [ec, r] =
            co_await p.client->async_call("hold", args(std::string(4096, 'x')), as_tuple);
        call_after_close = ec;
        std::tie(closed_why) = co_await p.server->async_wait_closed(as_tuple);
        p.close();
    });
    run(io);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0], errc::server_busy);
    EXPECT_FALSE(results[1]);
    EXPECT_FALSE(results[2]);
    EXPECT_EQ(call_after_close, errc::connection_closed);
    EXPECT_EQ(closed_why, errc::frame_error);
    EXPECT_FALSE(p.server->is_open());
}

// A call on a connection that is never started fails once its last handle goes, rather than
// never completing.
TEST(AsyncRpc, ACallFailsWhenTheLastHandleOfAnIdleConnectionGoes) {
    ::asio::io_context io;
    async_pair p(io);
    ASSERT_TRUE(p.client);
    std::error_code result;
    p.client->async_call("x", nullptr, [&](std::error_code ec, json) { result = ec; });
    io.restart();
    io.poll();  // the call registers and its request is written
    p.client.reset();
    run(io);
    EXPECT_EQ(result, errc::connection_closed);
}

// Garbage gets a parse error (id null) and the connection stays up; the peer's end fails the
// calls in progress with connection_closed.
TEST(AsyncRpc, GarbageIsAParseErrorAndThePeersEndFailsCalls) {
    ::asio::io_context io;
    auto name = npipe::test::unique_pipe_name("arpc");
    na::named_pipe_acceptor acceptor(io, name);
    std::promise<rpc::async_connection> accepted;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream pipe) {
        ASSERT_FALSE(ec);
        rpc::async_connection c(std::move(pipe),
                                rpc::connection_options{.framing = rpc::framing::newline});
        c.start();
        accepted.set_value(c);
    });
    auto guard = ::asio::make_work_guard(io);
    std::thread runner([&] { io.run_for(60s); });
    npipe::named_pipe_client raw(name);
    raw.connect(30s);
    auto server = accepted.get_future().get();
    std::string garbage = "{not json\n";
    raw.write(std::as_bytes(std::span(garbage.data(), garbage.size())));
    std::string line;
    char ch;
    while (raw.read(std::as_writable_bytes(std::span(&ch, 1))) == 1 && ch != '\n')
        line += ch;
    auto answer = json::parse(line);
    EXPECT_EQ(answer["error"]["code"], -32700) << line;
    EXPECT_TRUE(answer["id"].is_null());
    // A call from the server that the raw peer never answers, then the peer leaves.
    outcome_promise call;
    server.async_call("x", nullptr, call);
    line.clear();
    while (raw.read(std::as_writable_bytes(std::span(&ch, 1))) == 1 && ch != '\n')
        line += ch;
    EXPECT_EQ(json::parse(line)["method"], "x");
    raw.close();
    auto [ec, error] = call.p->get_future().get();
    EXPECT_EQ(ec, errc::connection_closed);
    EXPECT_NE(error["message"].get<std::string>().find(name), std::string::npos) << error;
    guard.reset();
    runner.join();
    EXPECT_TRUE(io.stopped());
    EXPECT_EQ(server.close_reason(), errc::connection_closed);
}

}  // namespace

// A batch from the async connection: one array out, each call's result or error in its slot,
// a notification in it answered by nobody; a batch cancelled while a call in it hangs gives
// up every unanswered call (the peer answers a batch as one array, so none is answered yet).
TEST(AsyncRpc, BatchOfCallsAndANotificationThenACancelledBatch) {
    ::asio::io_context io;
    async_pair p(io);
    ASSERT_TRUE(p.server);
    std::vector<std::string> notes;
    event entered(io);
    p.server->add_method("add", [](int a, int b) { return a + b; });
    p.server->add_method("note", [&](std::string s) { notes.push_back(std::move(s)); });
    p.server->add_method("hang", [&](rpc::call_context&) -> ::asio::awaitable<void> {
        entered.set();
        ::asio::steady_timer t(co_await ::asio::this_coro::executor, 60s);
        co_await t.async_wait(as_tuple);
    });
    p.start();
    spawn(io, [&]() -> ::asio::awaitable<void> {
        std::vector<rpc::async_connection::batch_call> calls{{"add", args(1, 2), false},
                                                             {"note", args("in a batch"), true},
                                                             {"nope", nullptr, false},
                                                             {"add", args(40, 2), false}};
        auto [ec, results] = co_await p.client->async_call_batch(calls, as_tuple);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(results.size(), 4u);
        if (results.size() == 4) {
            EXPECT_EQ(results[0].result, 3);
            EXPECT_TRUE(results[1].result.is_null());
            EXPECT_EQ(results[2].ec, errc::method_not_found);
            EXPECT_EQ(results[2].error["code"], -32601);
            EXPECT_EQ(results[3].result, 42);
        }
        auto [empty_ec, none] = co_await p.client->async_call_batch(
            std::vector<rpc::async_connection::batch_call>{}, as_tuple);
        EXPECT_EQ(empty_ec, errc::invalid_request);

        ::asio::cancellation_signal signal;
        std::vector<rpc::async_connection::batch_call> hanging{{"add", args(2, 2), false},
                                                               {"hang", nullptr, false}};
        event done(io);
        p.client->async_call_batch(
            hanging, ::asio::bind_cancellation_slot(
                         signal.slot(),
                         [&](std::error_code e, std::vector<rpc::connection::batch_result> r) {
                             EXPECT_EQ(e, errc::request_cancelled);
                             EXPECT_EQ(r.size(), 2u);
                             if (r.size() == 2) {
                                 EXPECT_EQ(r[0].ec, errc::request_cancelled);
                                 EXPECT_EQ(r[1].ec, errc::request_cancelled);
                             }
                             done.set();
                         }));
        co_await entered.wait();
        signal.emit(::asio::cancellation_type::terminal);
        co_await done.wait();
        // Still in step after the cancel.
        json r = co_await p.client->async_call("add", args(5, 5), use_awaitable);
        EXPECT_EQ(r, 10);
        p.close();
    });
    run(io);
    EXPECT_EQ(notes, std::vector<std::string>{"in a batch"});
}
