// npipe::asio: every operation with every kind of completion token, cancellation and timeouts
// (including cancel racing completion), destruction with operations pending, max_instances
// queueing, and interop with the synchronous library.
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/version.hpp>
#include <asio/write.hpp>
#if ASIO_VERSION >= 102400
#include <asio/deferred.hpp>
#else
#include <asio/experimental/deferred.hpp>
#endif
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/asio/timeout.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "support/test_support.hpp"

namespace na = npipe::asio;
using namespace std::chrono_literals;
using npipe::errc;
using npipe::test::unique_pipe_name;

namespace {

#if ASIO_VERSION >= 102400
constexpr auto& deferred = ::asio::deferred;
#else
constexpr auto& deferred = ::asio::experimental::deferred;
#endif
constexpr auto use_awaitable = ::asio::use_awaitable;
constexpr auto as_tuple = ::asio::experimental::as_tuple(::asio::use_awaitable);

// Runs the context until it has no more work; fails (rather than hangs) after `limit`.
void run(::asio::io_context& io, std::chrono::milliseconds limit = 20s) {
    io.restart();
    io.run_for(limit);
    EXPECT_TRUE(io.stopped()) << "operations still pending after " << limit.count() << " ms";
}

// Spawns a coroutine whose exception fails the test: an awaitable, or a lambda returning one
// (passed uncalled, so that co_spawn keeps the lambda and its captures alive).
template <class Coroutine>
void spawn(::asio::io_context& io, Coroutine&& c) {
    ::asio::co_spawn(io, std::forward<Coroutine>(c), [](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                ADD_FAILURE() << "coroutine threw: " << x.what();
            }
        }
    });
}

std::string text(const std::vector<char>& v, std::size_t n) {
    return std::string(v.data(), n);
}

double process_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// ---------------------------------------------------------------------------------------------
// Each operation with each completion token.

TEST(AsioPipe, CallbacksAcceptConnectWriteRead) {
    ::asio::io_context io;
    auto name = unique_pipe_name("cb");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client client(io, name);
    std::optional<na::pipe_stream> server;
    std::vector<char> buffer(64);
    std::string got;
    bool wrote = false;

    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_TRUE(p.is_open());
        EXPECT_EQ(p.transmission_mode(), npipe::transmission_mode::byte);
        EXPECT_EQ(p.pipe_name(), name);
        server.emplace(std::move(p));
        server->async_read_some(::asio::buffer(buffer), [&](std::error_code ec, std::size_t n) {
            ASSERT_FALSE(ec) << ec.message();
            got = text(buffer, n);
        });
    });
    client.async_connect([&](std::error_code ec) {
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_EQ(client.transmission_mode(), npipe::transmission_mode::byte);
        client.async_write_some(::asio::buffer(std::string_view("hello")),
                                [&](std::error_code ec, std::size_t n) {
                                    ASSERT_FALSE(ec) << ec.message();
                                    EXPECT_EQ(n, 5u);
                                    wrote = true;
                                });
    });
    run(io);
    EXPECT_TRUE(wrote);
    EXPECT_EQ(got, "hello");
    EXPECT_EQ(client.get_peer_credentials().pid, ::getpid());
}

TEST(AsioPipe, CoroutinesWithComposedReadWriteAndReadUntil) {
    ::asio::io_context io;
    auto name = unique_pipe_name("co");
    na::named_pipe_acceptor acceptor(io, name);
    std::string line, rest;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        std::string data;
        std::size_t n = co_await ::asio::async_read_until(pipe, ::asio::dynamic_buffer(data), '\n',
                                                          use_awaitable);
        line = data.substr(0, n);
        data.erase(0, n);
        std::vector<char> tail(6 - data.size());
        co_await ::asio::async_read(pipe, ::asio::buffer(tail), use_awaitable);
        rest = data + std::string(tail.begin(), tail.end());
        co_await ::asio::async_write(pipe, ::asio::buffer(std::string_view("bye")), use_awaitable);
    });
    std::string reply;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        na::named_pipe_client client(co_await ::asio::this_coro::executor, name);
        co_await client.async_connect(use_awaitable);
        co_await ::asio::async_write(client, ::asio::buffer(std::string_view("first line\nsecond")),
                                     use_awaitable);
        std::string data;
        auto [ec, n] = co_await ::asio::async_read(client, ::asio::dynamic_buffer(data), as_tuple);
        EXPECT_EQ(ec, ::asio::error::eof);  // the server closed after "bye"
        reply = data;
    });
    run(io);
    EXPECT_EQ(line, "first line\n");
    EXPECT_EQ(rest, "second");
    EXPECT_EQ(reply, "bye");
}

TEST(AsioPipe, FuturesWithTheContextOnAnotherThread) {
    ::asio::io_context io;
    auto name = unique_pipe_name("fut");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client client(io, name);
    // Operations start here, then a thread runs the context while this one waits on futures
    // (the objects are not touched meanwhile: they are not thread-safe).
    auto in_thread = [&] {
        io.restart();
        return std::thread([&] { io.run(); });
    };
    auto accepted = acceptor.async_accept(::asio::use_future);
    auto connected = client.async_connect(::asio::use_future);
    auto runner = in_thread();
    connected.get();
    na::pipe_stream server = accepted.get();
    runner.join();

    std::vector<char> buffer(16);
    auto wrote =
        client.async_write_some(::asio::buffer(std::string_view("future")), ::asio::use_future);
    auto read = ::asio::async_read(server, ::asio::buffer(buffer, 6), ::asio::use_future);
    runner = in_thread();
    EXPECT_EQ(wrote.get(), 6u);
    EXPECT_EQ(read.get(), 6u);
    runner.join();
    EXPECT_EQ(text(buffer, 6), "future");

    // An error arrives as the future's exception.
    client.close();
    auto failed =
        client.async_write_some(::asio::buffer(std::string_view("x")), ::asio::use_future);
    auto message = server.async_read_message(::asio::buffer(buffer), ::asio::use_future);
    runner = in_thread();
    try {
        failed.get();
        ADD_FAILURE() << "write on a closed pipe succeeded";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), errc::not_connected);
    }
    EXPECT_THROW(message.get(), std::system_error);  // a byte pipe has no messages
    runner.join();
}

TEST(AsioPipe, DeferredOperationsRunWhenInvoked) {
    ::asio::io_context io;
    auto name = unique_pipe_name("def");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client client(io, name);
    auto accept = acceptor.async_accept(deferred);
    auto connect = client.async_connect(deferred);
    std::optional<na::pipe_stream> server;
    std::string got;
    // Nothing has started yet: the deferred operations run when given a handler.
    std::move(accept)([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        server.emplace(std::move(p));
    });
    std::move(connect)([&](std::error_code ec) { ASSERT_FALSE(ec) << ec.message(); });
    run(io);
    ASSERT_TRUE(server);
    std::vector<char> buffer(8);
    auto write = client.async_write_some(::asio::buffer(std::string_view("later")), deferred);
    auto read = server->async_read_some(::asio::buffer(buffer), deferred);
    std::move(read)([&](std::error_code ec, std::size_t n) {
        ASSERT_FALSE(ec);
        got = text(buffer, n);
    });
    std::move(write)([](std::error_code ec, std::size_t) { ASSERT_FALSE(ec); });
    bool waited = false;
    client.async_wait(::asio::socket_base::wait_write, deferred)([&](std::error_code ec) {
        EXPECT_FALSE(ec);
        waited = true;
    });
    run(io);
    EXPECT_EQ(got, "later");
    EXPECT_TRUE(waited);
}

TEST(AsioPipe, HandlersNeverRunInsideTheInitiatingCall) {
    ::asio::io_context io;
    na::pipe_stream unconnected(io);
    bool inside = true;
    std::error_code result;
    std::vector<char> four(4);
    unconnected.async_read_some(::asio::buffer(four), [&](std::error_code ec, std::size_t) {
        EXPECT_FALSE(inside);
        result = ec;
    });
    inside = false;
    run(io);
    EXPECT_EQ(result, errc::not_connected);

    // Data already there: the read finishes without waiting, still through a post.
    auto name = unique_pipe_name("inl");
    na::named_pipe_acceptor acceptor(io, name);
    npipe::named_pipe_client sync_client(name);
    sync_client.connect(5s);
    sync_client.write("abc");
    std::optional<na::pipe_stream> server;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec);
        server.emplace(std::move(p));
    });
    run(io);
    ASSERT_TRUE(server);
    std::vector<char> buffer(3);
    inside = true;
    std::size_t got = 0;
    ::asio::async_read(*server, ::asio::buffer(buffer), [&](std::error_code ec, std::size_t n) {
        EXPECT_FALSE(inside);
        EXPECT_FALSE(ec);
        got = n;
    });
    inside = false;
    run(io);
    EXPECT_EQ(got, 3u);
}

TEST(AsioPipe, EndOfStreamAndBrokenPipe) {
    ::asio::io_context io;
    auto name = unique_pipe_name("eof");
    na::named_pipe_acceptor acceptor(io, name);
    std::error_code read_ec, write_ec, later_ec;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        std::vector<char> buffer(8);
        auto [ec, n] = co_await pipe.async_read_some(::asio::buffer(buffer), as_tuple);
        read_ec = ec;
        // The peer is gone: writes fail with broken_pipe (never SIGPIPE), and stay failed.
        std::string big(1 << 20, 'x');
        auto [wec, wn] = co_await ::asio::async_write(pipe, ::asio::buffer(big), as_tuple);
        write_ec = wec;
        auto [lec, ln] =
            co_await pipe.async_write_some(::asio::buffer(std::string_view("y")), as_tuple);
        later_ec = lec;
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        na::named_pipe_client client(co_await ::asio::this_coro::executor, name);
        co_await client.async_connect(use_awaitable);
        client.close();
    });
    run(io);
    EXPECT_EQ(read_ec, ::asio::error::eof);
    EXPECT_EQ(write_ec, errc::broken_pipe);
    EXPECT_EQ(later_ec, errc::broken_pipe);
}

TEST(AsioPipe, DirectionAndShutdownWrite) {
    ::asio::io_context io;
    auto name = unique_pipe_name("dir");
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in);
    na::named_pipe_client client(io, name, npipe::pipe_direction::out);
    std::string got;
    std::error_code server_write, client_read;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        auto [wec, wn] =
            co_await pipe.async_write_some(::asio::buffer(std::string_view("no")), as_tuple);
        server_write = wec;
        auto [ec, n] = co_await ::asio::async_read(pipe, ::asio::dynamic_buffer(got), as_tuple);
        EXPECT_EQ(ec, ::asio::error::eof);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await client.async_connect(use_awaitable);
        std::vector<char> buffer(4);
        auto [ec, n] = co_await client.async_read_some(::asio::buffer(buffer), as_tuple);
        client_read = ec;
        co_await ::asio::async_write(client, ::asio::buffer(std::string_view("one way")),
                                     use_awaitable);
        client.shutdown_write();
    });
    run(io);
    EXPECT_EQ(server_write, errc::wrong_direction);
    EXPECT_EQ(client_read, errc::wrong_direction);
    EXPECT_EQ(got, "one way");
}

// ---------------------------------------------------------------------------------------------
// Connect: waiting for the server, timeouts, errors.

TEST(AsioConnect, WaitsForTheServerWithoutSpinning) {
    ::asio::io_context io;
    auto name = unique_pipe_name("wait");
    na::named_pipe_client client(io, name);
    std::optional<na::named_pipe_acceptor> acceptor;
    std::chrono::steady_clock::time_point created, connected;
    client.async_connect([&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        connected = std::chrono::steady_clock::now();
    });
    // The server appears 400 ms later; meanwhile the client must not burn a CPU.
    ::asio::steady_timer later(io, 400ms);
    double cpu_before = process_cpu_seconds();
    later.async_wait([&](std::error_code) {
        created = std::chrono::steady_clock::now();
        acceptor.emplace(io, name);
        acceptor->async_accept([](std::error_code ec, na::pipe_stream) { EXPECT_FALSE(ec); });
    });
    run(io);
    double cpu = process_cpu_seconds() - cpu_before;
    EXPECT_TRUE(client.is_open());
    EXPECT_LT(cpu, 0.15) << "connect spun while waiting for the server";
    // The directory watch notices the socket at once, not after a whole backoff.
    EXPECT_LT(connected - created, 60ms);
}

TEST(AsioConnect, TimesOutWithTimedOut) {
    ::asio::io_context io;
    na::named_pipe_client client(io, unique_pipe_name("none"));
    std::error_code result;
    auto start = std::chrono::steady_clock::now();
    client.async_connect(150ms, [&](std::error_code ec) { result = ec; });
    run(io);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(result, errc::timed_out);
    EXPECT_EQ(result, std::errc::timed_out);
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 1s);
    EXPECT_FALSE(client.is_open());
}

TEST(AsioConnect, ErrorsThatAreNotRetried) {
    ::asio::io_context io;
    npipe::test::temp_dir dir;
    std::string file = dir.path() + "/file";
    std::ofstream(file) << "x";
    na::named_pipe_client client(io, file + "/below-a-file");  // ENOTDIR: no server can appear
    std::error_code result;
    client.async_connect(5s, [&](std::error_code ec) { result = ec; });
    run(io);
    EXPECT_EQ(result, std::errc::not_a_directory);  // at once, not after the timeout

    EXPECT_THROW(na::named_pipe_client(io, ""), npipe::pipe_error);
    EXPECT_THROW(na::named_pipe_client(io, std::string(200, 'n')), npipe::pipe_error);

    // Connecting twice: already_connected.
    auto name = unique_pipe_name("twice");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client twice(io, name);
    std::error_code second;
    twice.async_connect([&](std::error_code ec) {
        ASSERT_FALSE(ec);
        twice.async_connect([&](std::error_code ec) { second = ec; });
    });
    run(io);
    EXPECT_EQ(second, errc::already_connected);
}

// ---------------------------------------------------------------------------------------------
// Accept: the never-hijack listen logic, timeouts, max_instances.

TEST(AsioAcceptor, NeverTakesALiveServersName) {
    ::asio::io_context io;
    auto name = unique_pipe_name("hijack");
    npipe::named_pipe_server sync_server(name);
    try {
        na::named_pipe_acceptor acceptor(io, name);
        ADD_FAILURE() << "took a live server's name";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::name_in_use);
        EXPECT_EQ(e.pipe_name(), name);
    }
    na::named_pipe_acceptor mine(io, unique_pipe_name("mine"));
    EXPECT_THROW(npipe::named_pipe_server(mine.pipe_name()), npipe::pipe_error);
    EXPECT_THROW(na::named_pipe_acceptor(io, mine.pipe_name()), npipe::pipe_error);

    // A file that is not a socket is never deleted.
    npipe::test::temp_dir dir;
    std::string path = dir.path() + "/file";
    std::ofstream(path) << "keep";
    try {
        na::named_pipe_acceptor acceptor(io, path);
        ADD_FAILURE() << "listened over a regular file";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::not_a_socket);
    }
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_THROW(na::named_pipe_acceptor(io, unique_pipe_name(), npipe::pipe_direction::in_out, 0),
                 npipe::pipe_error);

    // Closing removes the socket file, and the name can be served again.
    std::string socket = mine.socket_path();
    EXPECT_EQ(::stat(socket.c_str(), &st), 0);
    mine.close();
    EXPECT_NE(::stat(socket.c_str(), &st), 0);
}

TEST(AsioAcceptor, AccessOptionsAsForTheSyncServer) {
    ::asio::io_context io;
    auto name = unique_pipe_name("acl");
    npipe::pipe_options options;
    options.socket_mode = 0640;
    int asked = 0;
    options.accept_peer = [&](const npipe::peer_credentials& c) {
        EXPECT_EQ(c.pid, ::getpid());
        return ++asked > 1;  // the first client is refused
    };
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out,
                                     npipe::max_allowed_server_instances,
                                     npipe::transmission_mode::byte, options);
    struct stat st {};
    ASSERT_EQ(::stat(acceptor.socket_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    npipe::named_pipe_client refused(name), admitted(name);
    refused.connect(5s);
    admitted.connect(5s);
    std::string got;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        auto pipe = std::make_shared<na::pipe_stream>(std::move(p));
        auto buffer = std::make_shared<std::array<char, 2>>();
        ::asio::async_read(*pipe, ::asio::buffer(*buffer), [&, pipe, buffer](auto ec, auto n) {
            EXPECT_FALSE(ec);
            got.assign(buffer->data(), n);
        });
    });
    admitted.write("ok");
    run(io);
    EXPECT_EQ(got, "ok");
    EXPECT_EQ(asked, 2);
    // The refused client was closed before a byte moved: it reads end of stream.
    std::array<std::byte, 4> buffer;
    EXPECT_EQ(refused.read(buffer), 0u);
}

TEST(AsioAcceptor, AcceptTimesOutAndStaysUsable) {
    ::asio::io_context io;
    auto name = unique_pipe_name("acc-to");
    na::named_pipe_acceptor acceptor(io, name);
    std::error_code first;
    bool second = false;
    acceptor.async_accept(100ms, [&](std::error_code ec, na::pipe_stream p) {
        first = ec;
        EXPECT_FALSE(p.is_open());
        acceptor.async_wait_for_connection(5s, [&](std::error_code ec, na::pipe_stream p) {
            EXPECT_FALSE(ec) << ec.message();
            second = p.is_open();
        });
        auto client = std::make_shared<na::named_pipe_client>(io, name);
        client->async_connect([client](std::error_code ec) { EXPECT_FALSE(ec); });
    });
    run(io);
    EXPECT_EQ(first, errc::timed_out);
    EXPECT_TRUE(second);
}

TEST(AsioAcceptor, MaxInstancesQueuesClientsUntilAPipeCloses) {
    ::asio::io_context io;
    auto name = unique_pipe_name("max");
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out, 2);
    EXPECT_EQ(acceptor.max_instances(), 2);
    std::vector<na::pipe_stream> accepted;
    std::function<void()> accept_next = [&] {
        acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
            if (ec)
                return;
            accepted.push_back(std::move(p));
            accept_next();
        });
    };
    accept_next();
    // Three clients connect: their connects all succeed (the third waits in the backlog, as
    // with .NET on Linux) and each sends its number.
    std::vector<std::unique_ptr<na::named_pipe_client>> clients;
    int connected = 0;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(std::make_unique<na::named_pipe_client>(io, name));
        auto* c = clients.back().get();
        c->async_connect([&, c, i](std::error_code ec) {
            ASSERT_FALSE(ec);
            ++connected;
            auto digit = std::make_shared<char>(char('0' + i));
            ::asio::async_write(*c, ::asio::buffer(digit.get(), 1),
                                [digit](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        });
    }
    io.restart();
    while (connected < 3 || accepted.size() < 2)
        ASSERT_NE(io.run_one_for(5s), 0u) << "stuck with " << accepted.size() << " accepted";
    // Everything ready runs; the third client must stay queued, not be accepted nor dropped.
    io.run_for(200ms);
    EXPECT_EQ(accepted.size(), 2u);
    // Closing one accepted pipe lets the queued client in.
    accepted.front().close();
    io.restart();
    while (accepted.size() < 3)
        ASSERT_NE(io.run_one_for(5s), 0u);
    std::vector<char> digit(1);
    std::string seen;
    for (std::size_t i = 1; i < 3; ++i) {
        ::asio::async_read(accepted[i], ::asio::buffer(digit),
                           [&](std::error_code ec, std::size_t) {
                               ASSERT_FALSE(ec);
                               seen += digit[0];
                           });
        io.restart();
        while (seen.size() < i)
            ASSERT_NE(io.run_one_for(5s), 0u);
    }
    EXPECT_EQ(seen.size(), 2u);
    acceptor.close();
    accepted.clear();
    clients.clear();
    run(io);
}

// ---------------------------------------------------------------------------------------------
// Cancellation and timeouts.

struct connected_pair {
    std::optional<na::named_pipe_acceptor> acceptor;
    std::optional<na::pipe_stream> server;
    std::optional<na::named_pipe_client> client;
};

connected_pair make_pair(::asio::io_context& io,
                         npipe::transmission_mode mode = npipe::transmission_mode::byte) {
    connected_pair p;
    auto name = unique_pipe_name("pair");
    p.acceptor.emplace(io, name, npipe::pipe_direction::in_out, npipe::max_allowed_server_instances,
                       mode);
    p.client.emplace(io, name);
    p.acceptor->async_accept([&](std::error_code ec, na::pipe_stream s) {
        EXPECT_FALSE(ec) << ec.message();
        p.server.emplace(std::move(s));
    });
    p.client->async_connect([](std::error_code ec) { EXPECT_FALSE(ec) << ec.message(); });
    run(io);
    EXPECT_TRUE(p.server && p.server->is_open());
    return p;
}

TEST(AsioCancel, PerOperationSlotCancelsAReadAndThePipeStaysUsable) {
    for (auto type : {::asio::cancellation_type::terminal, ::asio::cancellation_type::partial,
                      ::asio::cancellation_type::total}) {
        ::asio::io_context io;
        auto p = make_pair(io);
        ::asio::cancellation_signal signal;
        std::vector<char> buffer(8);
        std::error_code result;
        p.server->async_read_some(
            ::asio::buffer(buffer),
            ::asio::bind_cancellation_slot(signal.slot(),
                                           [&](std::error_code ec, std::size_t) { result = ec; }));
        ::asio::post(io, [&] { signal.emit(type); });
        run(io);
        EXPECT_EQ(result, ::asio::error::operation_aborted);
        std::string got;
        ::asio::async_write(*p.client, ::asio::buffer(std::string_view("still")),
                            [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        ::asio::async_read(*p.server, ::asio::buffer(buffer, 5),
                           [&](std::error_code ec, std::size_t n) {
                               EXPECT_FALSE(ec);
                               got = text(buffer, n);
                           });
        run(io);
        EXPECT_EQ(got, "still");
    }
}

TEST(AsioCancel, AwaitableOrWithATimerAndWithTimeout) {
    using namespace ::asio::experimental::awaitable_operators;
    ::asio::io_context io;
    auto p = make_pair(io);
    bool timer_won = false;
    std::error_code timed_out;
    std::string after;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        std::vector<char> buffer(16);
        ::asio::steady_timer timer(co_await ::asio::this_coro::executor, 50ms);
        auto winner = co_await (p.server->async_read_some(::asio::buffer(buffer), use_awaitable) ||
                                timer.async_wait(use_awaitable));
        timer_won = winner.index() == 1;
        auto [ec, n] = co_await na::async_with_timeout(
            p.server->get_executor(), 50ms,
            [&](auto token) { return p.server->async_read_some(::asio::buffer(buffer), token); },
            as_tuple);
        timed_out = ec;
        // Still usable: the next read gets what the client sends.
        co_await ::asio::async_write(*p.client, ::asio::buffer(std::string_view("ok")),
                                     use_awaitable);
        n = co_await na::async_with_timeout(
            p.server->get_executor(), 5s,
            [&](auto token) { return p.server->async_read_some(::asio::buffer(buffer), token); },
            use_awaitable);
        after = text(buffer, n);
    });
    run(io);
    EXPECT_TRUE(timer_won);
    EXPECT_EQ(timed_out, errc::timed_out);
    EXPECT_EQ(after, "ok");
}

TEST(AsioCancel, CancelAndCloseCompletePendingOperations) {
    ::asio::io_context io;
    auto p = make_pair(io);
    std::vector<char> buffer(8);
    std::error_code read_ec, wait_ec;
    p.server->async_read_some(::asio::buffer(buffer),
                              [&](std::error_code ec, std::size_t) { read_ec = ec; });
    ::asio::post(io, [&] { p.server->cancel(); });
    run(io);
    EXPECT_EQ(read_ec, ::asio::error::operation_aborted);
    EXPECT_TRUE(p.server->is_open());

    p.server->async_wait(::asio::socket_base::wait_read, [&](std::error_code ec) { wait_ec = ec; });
    ::asio::post(io, [&] { p.server->close(); });
    run(io);
    EXPECT_EQ(wait_ec, ::asio::error::operation_aborted);
    EXPECT_FALSE(p.server->is_open());

    // A connect waiting for a server that never comes, cancelled and closed.
    na::named_pipe_client waiting(io, unique_pipe_name("never"));
    std::error_code connect_ec;
    waiting.async_connect([&](std::error_code ec) { connect_ec = ec; });
    ::asio::steady_timer t(io, 30ms);
    t.async_wait([&](std::error_code) { waiting.cancel(); });
    run(io);
    EXPECT_EQ(connect_ec, ::asio::error::operation_aborted);

    std::error_code accept_ec;
    p.acceptor->async_accept([&](std::error_code ec, na::pipe_stream) { accept_ec = ec; });
    ::asio::post(io, [&] { p.acceptor->cancel(); });
    run(io);
    EXPECT_EQ(accept_ec, ::asio::error::operation_aborted);
    EXPECT_TRUE(p.acceptor->is_open());
}

// cancel() issued after the reactor has seen the data but before the read's handler has run
// (or before, or after it): the read completes exactly once, with the message or aborted, and an
// aborted read leaves the message in the pipe for the next one.
TEST(AsioCancel, CancelRacingCompletionLosesNothing) {
    for (auto mode : {npipe::transmission_mode::byte, npipe::transmission_mode::message}) {
        const bool message = mode == npipe::transmission_mode::message;
        ::asio::io_context io;
        auto p = make_pair(io, mode);
        int aborted = 0;
        for (int round = 0; round < 200; ++round) {
            std::string msg = "m" + std::to_string(round);
            std::vector<char> buffer(32);
            int calls = 0;
            std::error_code result;
            std::size_t got = 0;
            auto start_read = [&] {
                auto on_read = [&](std::error_code ec, std::size_t n) {
                    ++calls;
                    result = ec;
                    got = n;
                };
                if (message)
                    p.server->async_read_message(::asio::buffer(buffer), on_read);
                else
                    p.server->async_read_some(::asio::buffer(buffer), on_read);
            };
            auto send = [&] {
                auto done = [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); };
                if (message)
                    p.client->async_write_message(::asio::buffer(msg), done);
                else
                    ::asio::async_write(*p.client, ::asio::buffer(msg), done);
            };
            start_read();
            // The order in which the data, the cancel and the handlers meet varies by round.
            if (round % 2)
                send();
            for (int i = 0; i < round % 5; ++i)
                io.poll_one();
            ::asio::post(io, [&] { p.server->cancel(); });
            if (round % 2 == 0)
                send();
            run(io);
            ASSERT_EQ(calls, 1) << "round " << round;
            if (result) {
                ASSERT_EQ(result, ::asio::error::operation_aborted) << result.message();
                ++aborted;
                calls = 0;
                start_read();
                run(io);
                ASSERT_EQ(calls, 1);
                ASSERT_FALSE(result) << result.message();
            }
            ASSERT_EQ(text(buffer, got), msg) << "round " << round;
        }
        EXPECT_GT(aborted, 0);
    }
}

// The exact race: the reactor has seen the pipe readable and completed the read's internal wait
// with success, and a handler that runs just before the read's own handler cancels the read.
// An async_wait on the same pipe, registered first, completes in the same reactor pass and runs
// first (Asio runs the first completed operation of a descriptor at once and posts the others).
// The read must complete with operation_aborted without taking the message, which the next read
// then gets.
TEST(AsioCancel, CancelAfterTheWaitCompletedButBeforeItsHandlerRan) {
    for (bool by_slot : {false, true}) {
        ::asio::io_context io;
        auto p = make_pair(io, npipe::transmission_mode::message);
        ::asio::cancellation_signal signal;
        std::string got;
        std::error_code result;
        int calls = 0;
        p.server->async_wait(::asio::socket_base::wait_read, [&](std::error_code ec) {
            ASSERT_FALSE(ec);
            if (by_slot)
                signal.emit(::asio::cancellation_type::terminal);
            else
                p.server->cancel();
        });
        p.server->async_read_message(
            ::asio::dynamic_buffer(got),
            ::asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::size_t) {
                ++calls;
                result = ec;
            }));
        // The message goes out inside this call (the write's first step runs at once).
        p.client->async_write_message(::asio::buffer(std::string_view("kept")),
                                      [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        run(io);
        EXPECT_EQ(calls, 1);
        EXPECT_EQ(result, ::asio::error::operation_aborted) << "by_slot " << by_slot;
        EXPECT_TRUE(got.empty());
        p.server->async_read_message(::asio::dynamic_buffer(got),
                                     [](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        run(io);
        EXPECT_EQ(got, "kept");
    }
}

// ---------------------------------------------------------------------------------------------
// Destruction with operations pending: operation_aborted, never a crash or a hang.

TEST(AsioDestroy, PendingOperationsCompleteWithOperationAborted) {
    ::asio::io_context io;
    auto name = unique_pipe_name("destroy");
    std::error_code accept_ec, read_ec, write_ec, connect_ec, message_ec;
    {
        auto acceptor = std::make_unique<na::named_pipe_acceptor>(io, name);
        acceptor->async_accept([&](std::error_code ec, na::pipe_stream) { accept_ec = ec; });
        ::asio::post(io, [&] { acceptor.reset(); });
        run(io);
    }
    EXPECT_EQ(accept_ec, ::asio::error::operation_aborted);
    {
        auto p = make_pair(io);
        std::vector<char> buffer(8);
        p.server->async_read_some(::asio::buffer(buffer),
                                  [&](std::error_code ec, std::size_t) { read_ec = ec; });
        // A write that cannot finish: the socket's buffer is full and the client does not read.
        std::string chunk(65536, 'x');
        while (::send(p.server->native_handle(), chunk.data(), chunk.size(),
                      MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
        }
        p.server->async_write_some(::asio::buffer(chunk),
                                   [&](std::error_code ec, std::size_t) { write_ec = ec; });
        ::asio::post(io, [&] { p.server.reset(); });
        run(io);
    }
    EXPECT_EQ(read_ec, ::asio::error::operation_aborted);
    EXPECT_EQ(write_ec, ::asio::error::operation_aborted);
    {
        auto client = std::make_unique<na::named_pipe_client>(io, unique_pipe_name("gone"));
        client->async_connect([&](std::error_code ec) { connect_ec = ec; });
        ::asio::steady_timer t(io, 20ms);
        t.async_wait([&](std::error_code) { client.reset(); });
        run(io);
    }
    EXPECT_EQ(connect_ec, ::asio::error::operation_aborted);
    {
        auto p = make_pair(io, npipe::transmission_mode::message);
        std::string storage;
        p.client->async_read_message(::asio::dynamic_buffer(storage),
                                     [&](std::error_code ec, std::size_t) { message_ec = ec; });
        ::asio::post(io, [&] { p.client.reset(); });
        run(io);
    }
    EXPECT_EQ(message_ec, ::asio::error::operation_aborted);

    // Destroying the io_context with operations pending destroys their handlers, no more.
    auto ctx = std::make_unique<::asio::io_context>();
    auto p = make_pair(*ctx);
    std::vector<char> buffer(8);
    p.server->async_read_some(::asio::buffer(buffer), [](std::error_code, std::size_t) {});
    p.acceptor->async_accept([](std::error_code, na::pipe_stream) {});
    p = {};
    ctx.reset();
}

// ---------------------------------------------------------------------------------------------
// Message pipes.

TEST(AsioMessage, WholeMessagesOfEverySize) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    EXPECT_EQ(p.server->transmission_mode(), npipe::transmission_mode::message);
    EXPECT_EQ(p.client->transmission_mode(), npipe::transmission_mode::message);
    EXPECT_EQ(p.server->read_mode(), npipe::transmission_mode::message);
    EXPECT_EQ(p.client->read_mode(), npipe::transmission_mode::byte);
    std::vector<std::string> sent = {"", "a", npipe::test::pattern(70000, 2),
                                     npipe::test::pattern(3 << 20, 3), "last"};
    std::vector<std::string> got;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (auto& m : sent)
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        // Several buffers make one message.
        std::array<::asio::const_buffer, 6> parts{::asio::buffer("ab", 2), ::asio::buffer("", 0),
                                                  ::asio::buffer("cd", 2), ::asio::buffer("ef", 2),
                                                  ::asio::buffer("gh", 2), ::asio::buffer("ij", 2)};
        co_await p.client->async_write_message(parts, use_awaitable);
        p.client->close();
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (;;) {
            std::string m;
            auto [ec, n] =
                co_await p.server->async_read_message(::asio::dynamic_buffer(m), as_tuple);
            if (ec == ::asio::error::eof)
                break;
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(n, m.size());
            got.push_back(m);
        }
        EXPECT_TRUE(p.server->end_of_stream());
    });
    run(io);
    sent.push_back("abcdefghij");
    EXPECT_EQ(got, sent);
}

TEST(AsioMessage, MessageOperationsWithFuturesDeferredAndWait) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    // Futures: the operations start here, a thread runs the context.
    std::array<char, 16> fixed;
    auto wrote = p.client->async_write_message(::asio::buffer(std::string_view("via future")),
                                               ::asio::use_future);
    auto read = p.server->async_read_message(::asio::buffer(fixed), ::asio::use_future);
    std::thread runner([&] { io.run(); });
    EXPECT_EQ(wrote.get(), 10u);
    EXPECT_EQ(read.get(), 10u);
    runner.join();
    EXPECT_EQ(std::string(fixed.data(), 10), "via future");
    // Deferred: nothing happens until the operations are given handlers.
    std::string got;
    auto deferred_write =
        p.server->async_write_message(::asio::buffer(std::string_view("via deferred")), deferred);
    auto deferred_read = p.client->async_read_message(::asio::dynamic_buffer(got), deferred);
    bool waited = false;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await p.client->async_wait(::asio::socket_base::wait_read, use_awaitable);
        waited = true;
    });
    std::move(deferred_read)([](std::error_code ec, std::size_t n) {
        EXPECT_FALSE(ec);
        EXPECT_EQ(n, 12u);
    });
    std::move(deferred_write)([](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
    run(io);
    EXPECT_EQ(got, "via deferred");
    EXPECT_TRUE(waited);
}

TEST(AsioMessage, TooLargeForTheBufferIsSkipped) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    std::vector<std::string> results;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (std::string m : {"small", "this one is too long", "fits"})
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        p.client->close();
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (;;) {
            std::array<char, 8> buffer;
            auto [ec, n] = co_await p.server->async_read_message(::asio::buffer(buffer), as_tuple);
            if (ec == ::asio::error::eof)
                break;
            results.push_back(ec ? "error:" + ec.message() : std::string(buffer.data(), n));
        }
    });
    run(io);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0], "small");
    EXPECT_EQ(results[1], "error:" + std::error_code(errc::message_too_large).message());
    EXPECT_EQ(results[2], "fits");
}

TEST(AsioMessage, ReadSomeInMessageAndByteReadMode) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    std::vector<std::pair<std::string, bool>> parts;
    std::string stream;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (std::string m : {"0123456789", "ab"})
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        // Message read mode: a read never crosses a message boundary.
        std::array<char, 4> buffer;
        while (parts.size() < 4) {
            auto n = co_await p.server->async_read_some(::asio::buffer(buffer), use_awaitable);
            parts.emplace_back(std::string(buffer.data(), n), p.server->is_message_complete());
        }
        // Byte read mode: payload bytes as a stream.
        p.server->set_read_mode(npipe::transmission_mode::byte);
        for (std::string m : {"xy", "z"})
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        p.client->close();
        auto [ec, n] =
            co_await ::asio::async_read(*p.server, ::asio::dynamic_buffer(stream), as_tuple);
        EXPECT_EQ(ec, ::asio::error::eof);
    });
    run(io);
    std::vector<std::pair<std::string, bool>> expected = {
        {"0123", false}, {"4567", false}, {"89", true}, {"ab", true}};
    EXPECT_EQ(parts, expected);
    EXPECT_EQ(stream, "xyz");
    auto bytes = make_pair(io);
    EXPECT_THROW(bytes.server->set_read_mode(npipe::transmission_mode::message), npipe::pipe_error);
    na::named_pipe_client unconnected(io, unique_pipe_name());
    EXPECT_THROW(unconnected.set_read_mode(npipe::transmission_mode::message), npipe::pipe_error);
    EXPECT_THROW(unconnected.transmission_mode(), npipe::pipe_error);
}

TEST(AsioMessage, LimitsAndByteMismatch) {
    ::asio::io_context io;
    auto name = unique_pipe_name("lim");
    npipe::pipe_options options;
    options.max_message_size = 100;
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out,
                                     npipe::max_allowed_server_instances,
                                     npipe::transmission_mode::message, options);
    na::named_pipe_client client(io, name, npipe::pipe_direction::in_out, options);
    std::error_code too_big_write, too_big_read, byte_read, byte_write;
    std::string after;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto pipe = co_await acceptor.async_accept(use_awaitable);
        std::string m;
        auto [ec, n] = co_await pipe.async_read_message(::asio::dynamic_buffer(m, 10), as_tuple);
        too_big_read = ec;
        EXPECT_TRUE(m.empty());
        co_await pipe.async_read_message(::asio::dynamic_buffer(after), use_awaitable);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await client.async_connect(use_awaitable);
        std::string big(101, 'b');
        auto [ec, n] = co_await client.async_write_message(::asio::buffer(big), as_tuple);
        too_big_write = ec;
        co_await client.async_write_message(::asio::buffer(std::string(11, 'c')), use_awaitable);
        co_await client.async_write_message(::asio::buffer(std::string("next")), use_awaitable);
    });
    run(io);
    EXPECT_EQ(too_big_write, errc::message_too_large);
    EXPECT_EQ(too_big_read, errc::message_too_large);
    EXPECT_EQ(after, "next");

    auto bytes = make_pair(io);
    std::string storage;
    bytes.server->async_read_message(::asio::dynamic_buffer(storage),
                                     [&](std::error_code ec, std::size_t) { byte_read = ec; });
    bytes.server->async_write_message(::asio::buffer(storage),
                                      [&](std::error_code ec, std::size_t) { byte_write = ec; });
    run(io);
    EXPECT_EQ(byte_read, errc::not_supported);
    EXPECT_EQ(byte_write, errc::not_supported);
}

TEST(AsioMessage, CancelledWholeReadDiscardsOnlyItsMessage) {
    ::asio::io_context io;
    auto p = make_pair(io, npipe::transmission_mode::message);
    // The first frames of a large message arrive, then the read is cancelled while it waits
    // for the rest: that message is given up, the next one arrives intact.
    int fd = p.client->native_handle();
    auto frame = [&](const std::string& payload, bool more) {
        std::uint32_t h = std::uint32_t(payload.size()) | (more ? 0x80000000u : 0u);
        std::string record(4, '\0');
        for (int i = 0; i < 4; ++i)
            record[i] = char((h >> (8 * i)) & 0xff);
        record += payload;
        ASSERT_EQ(::send(fd, record.data(), record.size(), MSG_NOSIGNAL), ssize_t(record.size()));
    };
    frame("first part ", true);
    std::string got;
    std::error_code first;
    ::asio::cancellation_signal signal;
    p.server->async_read_message(
        ::asio::dynamic_buffer(got),
        ::asio::bind_cancellation_slot(signal.slot(),
                                       [&](std::error_code ec, std::size_t) { first = ec; }));
    // The first frame was consumed when the read started; it now waits for the rest.
    signal.emit(::asio::cancellation_type::terminal);
    run(io);
    EXPECT_EQ(first, ::asio::error::operation_aborted);
    EXPECT_TRUE(got.empty());
    frame("rest of the abandoned message", false);
    frame("whole", false);
    p.server->async_read_message(::asio::dynamic_buffer(got),
                                 [&](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
    run(io);
    EXPECT_EQ(got, "whole");
}

// ---------------------------------------------------------------------------------------------
// Several threads: a thread pool, the acceptor on a strand and every pipe on a strand of its own,
// pipes closed (giving their instance slot back) on other threads than the acceptor's. Meant to
// run under ThreadSanitizer as well.

TEST(AsioThreads, ThreadPoolWithStrandsEchoesAndKeepsTheQuota) {
    ::asio::thread_pool pool(4);
    auto name = unique_pipe_name("pool");
    auto acceptor_strand = ::asio::make_strand(pool);
    na::named_pipe_acceptor acceptor(acceptor_strand, name, npipe::pipe_direction::in_out, 3);
    std::atomic<int> live{0}, most{0}, served{0};
    std::promise<void> all_served;
    ::asio::co_spawn(
        acceptor_strand,
        [&]() -> ::asio::awaitable<void> {
            for (;;) {
                auto [ec, pipe] =
                    co_await acceptor.async_accept(::asio::make_strand(pool), as_tuple);
                if (ec)
                    co_return;
                int now = ++live;
                for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
                }
                auto ex = pipe.get_executor();
                ::asio::co_spawn(
                    ex,
                    [&, p = std::move(pipe)]() mutable -> ::asio::awaitable<void> {
                        std::vector<char> buffer(4096);
                        for (;;) {
                            auto [ec, n] =
                                co_await p.async_read_some(::asio::buffer(buffer), as_tuple);
                            if (ec)
                                break;
                            co_await ::asio::async_write(p, ::asio::buffer(buffer, n),
                                                         use_awaitable);
                        }
                        --live;  // before the slot is given back, so `most` is exact
                        p.close();
                        if (++served == 12)
                            all_served.set_value();
                    },
                    ::asio::detached);
            }
        },
        ::asio::detached);
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int i = 0; i < 12; ++i)
        clients.emplace_back([&, i] {
            npipe::named_pipe_client c(name);
            c.connect(10s);
            std::string payload = npipe::test::pattern(20000 + i, i + 5);
            c.write(payload);
            std::string back(payload.size(), '\0');
            for (std::size_t have = 0; have < back.size();) {
                auto n = c.read(std::as_writable_bytes(std::span(back)).subspan(have));
                if (n == 0)
                    return;
                have += n;
            }
            if (back == payload)
                ++ok;
        });
    for (auto& t : clients)
        t.join();
    EXPECT_EQ(all_served.get_future().wait_for(20s), std::future_status::ready);
    ::asio::post(acceptor_strand, [&] { acceptor.close(); });
    pool.join();
    EXPECT_EQ(ok, 12);
    EXPECT_EQ(served, 12);
    EXPECT_LE(most, 3);
    EXPECT_GE(most, 1);
}

// ---------------------------------------------------------------------------------------------
// Interop with the synchronous library, both ways and both transmission modes.

// Sends each client's bytes (or messages) straight back until it closes, then calls done.
::asio::awaitable<void> echo(na::pipe_stream pipe, bool message, std::function<void()> done) {
    std::vector<char> buffer(4096);
    for (;;) {
        if (message) {
            std::string data;
            auto [ec, n] = co_await pipe.async_read_message(::asio::dynamic_buffer(data), as_tuple);
            if (ec)
                break;
            co_await pipe.async_write_message(::asio::buffer(data), use_awaitable);
        } else {
            auto [ec, n] = co_await pipe.async_read_some(::asio::buffer(buffer), as_tuple);
            if (ec)
                break;
            co_await ::asio::async_write(pipe, ::asio::buffer(buffer, n), use_awaitable);
        }
    }
    done();
}

TEST(AsioInterop, AsyncServerSyncClients) {
    for (auto mode : {npipe::transmission_mode::byte, npipe::transmission_mode::message}) {
        ::asio::io_context io;
        auto name = unique_pipe_name("a-srv");
        na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out, 4, mode);
        const bool message = mode == npipe::transmission_mode::message;
        // An echo server: each client's data straight back, until the client closes.
        int served = 0;
        std::function<void()> accept_next = [&] {
            acceptor.async_accept([&](std::error_code ec, na::pipe_stream pipe) {
                if (ec)
                    return;
                accept_next();
                spawn(io, echo(std::move(pipe), message, [&] {
                          if (++served == 8)
                              acceptor.close();
                      }));
            });
        };
        accept_next();
        std::thread runner([&] { run(io); });
        std::vector<std::thread> clients;
        std::atomic<int> ok{0};
        for (int i = 0; i < 8; ++i)
            clients.emplace_back([&, i] {
                npipe::named_pipe_client c(name);
                c.connect(10s);
                EXPECT_EQ(c.transmission_mode(), mode);
                if (message)
                    c.set_read_mode(npipe::transmission_mode::message);
                std::string payload = npipe::test::pattern(1000 + 37 * i, i + 1);
                c.write(payload);
                std::string back(payload.size(), '\0');
                std::size_t have = 0;
                while (have < back.size()) {
                    auto n = c.read(std::as_writable_bytes(std::span(back)).subspan(have));
                    ASSERT_GT(n, 0u);
                    have += n;
                }
                if (back == payload)
                    ++ok;
            });
        for (auto& t : clients)
            t.join();
        runner.join();
        EXPECT_EQ(ok, 8);
    }
}

TEST(AsioInterop, AsyncClientSyncServer) {
    for (auto mode : {npipe::transmission_mode::byte, npipe::transmission_mode::message}) {
        auto name = unique_pipe_name("s-srv");
        npipe::named_pipe_server server(name, npipe::pipe_direction::in_out, 1, mode);
        std::thread t([&] {
            server.wait_for_connection(10s);
            std::vector<std::byte> buffer(1 << 16);
            for (;;) {
                auto n = server.read(buffer);
                if (n == 0 && server.end_of_stream())
                    break;
                if (n == 0 && mode == npipe::transmission_mode::byte)
                    break;
                server.write(std::span(buffer).first(n));
            }
        });
        ::asio::io_context io;
        std::string back;
        spawn(io, [&]() -> ::asio::awaitable<void> {
            na::named_pipe_client client(co_await ::asio::this_coro::executor, name);
            co_await client.async_connect(5s, use_awaitable);
            EXPECT_EQ(client.transmission_mode(), mode);
            std::string payload = npipe::test::pattern(50000, 9);
            if (mode == npipe::transmission_mode::message) {
                co_await client.async_write_message(::asio::buffer(payload), use_awaitable);
                co_await client.async_read_message(::asio::dynamic_buffer(back), use_awaitable);
            } else {
                co_await ::asio::async_write(client, ::asio::buffer(payload), use_awaitable);
                back.resize(payload.size());
                co_await ::asio::async_read(client, ::asio::buffer(back), use_awaitable);
            }
            EXPECT_EQ(back, payload);
        });
        run(io);
        t.join();
        EXPECT_EQ(back.size(), 50000u);
    }
}

}  // namespace
