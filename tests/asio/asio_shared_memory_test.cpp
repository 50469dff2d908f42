// npipe::asio over the shared-memory transport (pipe_options::shared_memory, docs/protocol.md
// "Shared memory"): the asynchronous behaviour cases run on both transports (AsioTransport,
// .../socket and .../shm), then what only shared memory has: sync and async ends mixed, many
// pipes on one thread, a peer killed with SIGKILL, the CLI's `serve --echo --shared-memory`.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "asio/asio_test_support.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe_asio_test {
namespace {

using npipe::pipe_direction;
using npipe::pipe_options;
using npipe::transmission_mode;

pipe_options shm(std::size_t ring = pipe_options::default_shared_memory_ring_size) {
    pipe_options o;
    o.shared_memory = true;
    o.shared_memory_ring_size = ring;
    return o;
}

// How many shared-memory pipe ends this process has mapped.
std::size_t shm_mappings() {
    std::size_t found = 0;
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        found += line.find("/memfd:npipe-shm") != std::string::npos;
    return found;
}

// A connected asynchronous pair whose both ends opted in (or neither), with 4 KiB rings so that
// every transfer larger than that waits for room and for data.
connected_pair connect_pair(::asio::io_context& io, bool shared, transmission_mode mode,
                            pipe_options server_options = {}) {
    pipe_options client_options;
    if (shared) {
        server_options.shared_memory = client_options.shared_memory = true;
        client_options.shared_memory_ring_size = 4096;
    }
    auto p = make_pair(io, mode, server_options, client_options);
    EXPECT_EQ(shm_mappings(), shared ? 2u : 0u);
    return p;
}

class AsioTransport : public ::testing::TestWithParam<bool> {
  protected:
    bool shared() const { return GetParam(); }
    connected_pair pair(transmission_mode mode = transmission_mode::byte,
                        pipe_options server_options = {}) {
        return connect_pair(io, shared(), mode, server_options);
    }
    ::asio::io_context io;
};

INSTANTIATE_TEST_SUITE_P(Asio, AsioTransport, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "shm" : "socket"; });

// Both directions at once, each far larger than a ring: every read and write waits for the
// other side's progress, on one thread.
TEST_P(AsioTransport, LargeTransfersBothWaysOnOneThread) {
    auto p = pair();
    const auto up = npipe::test::pattern(3 << 20, 1), down = npipe::test::pattern(2 << 20, 2);
    std::string got_up(up.size(), '\0'), got_down(down.size(), '\0');
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_write(*p.client, ::asio::buffer(up), use_awaitable);
        p.client->shutdown_write();
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_write(*p.server, ::asio::buffer(down), use_awaitable);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_read(*p.server, ::asio::buffer(got_up), use_awaitable);
        char extra;
        auto [ec, n] = co_await p.server->async_read_some(::asio::buffer(&extra, 1), as_tuple);
        EXPECT_EQ(ec, ::asio::error::eof);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_read(*p.client, ::asio::buffer(got_down), use_awaitable);
    });
    run(io, 60s);
    EXPECT_TRUE(got_up == up);
    EXPECT_TRUE(got_down == down);
}

// Messages of every size class keep their boundaries; a small read buffer in message read mode
// sees is_message_complete() false until the message's last byte.
TEST_P(AsioTransport, MessageBoundariesAndIsMessageComplete) {
    auto p = pair(transmission_mode::message);
    const std::vector<std::string> sent = {"", "a", npipe::test::pattern(5000, 3),
                                           npipe::test::pattern(300000, 4), "last"};
    std::vector<std::string> got;
    std::vector<bool> completes;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (auto& m : sent)
            co_await p.client->async_write_message(::asio::buffer(m), use_awaitable);
        co_await p.client->async_write_message(::asio::buffer("0123456789", 10), use_awaitable);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (std::size_t i = 0; i < sent.size(); ++i) {
            std::string m;
            co_await p.server->async_read_message(::asio::dynamic_buffer(m), use_awaitable);
            got.push_back(std::move(m));
        }
        char part[4];
        std::string joined;
        do {
            auto n = co_await p.server->async_read_some(::asio::buffer(part), use_awaitable);
            joined.append(part, n);
            completes.push_back(p.server->is_message_complete());
        } while (!completes.back());
        EXPECT_EQ(joined, "0123456789");
    });
    run(io, 60s);
    EXPECT_TRUE(got == sent);
    EXPECT_EQ(completes, (std::vector<bool>{false, false, true}));
}

TEST_P(AsioTransport, MaxMessageSizeSkipsTheMessageAndKeepsTheStreamInStep) {
    pipe_options limited;
    limited.max_message_size = 1000;
    auto p = pair(transmission_mode::message, limited);
    std::error_code too_large;
    std::string next;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        std::string big(50000, 'x');
        co_await p.client->async_write_message(::asio::buffer(big), use_awaitable);
        co_await p.client->async_write_message(::asio::buffer("small", 5), use_awaitable);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        std::string m;
        auto [ec, n] = co_await p.server->async_read_message(::asio::dynamic_buffer(m), as_tuple);
        too_large = ec;
        co_await p.server->async_read_message(::asio::dynamic_buffer(next), use_awaitable);
    });
    run(io);
    EXPECT_EQ(too_large, errc::message_too_large);
    EXPECT_EQ(next, "small");
}

// shutdown_write: the peer reads the end after the bytes, and can still answer; once the
// reader has gone, writes fail with broken_pipe.
TEST_P(AsioTransport, HalfCloseThenEndOfStreamThenBrokenPipe) {
    auto p = pair();
    std::string got, answer(6, '\0');
    std::error_code end, broken;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_write(*p.client, ::asio::buffer("question", 8), use_awaitable);
        p.client->shutdown_write();
        co_await ::asio::async_read(*p.client, ::asio::buffer(answer), use_awaitable);
        p.client->close();
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto [ec, n] =
            co_await ::asio::async_read(*p.server, ::asio::dynamic_buffer(got), as_tuple);
        end = ec;
        co_await ::asio::async_write(*p.server, ::asio::buffer("answer", 6), use_awaitable);
    });
    run(io);
    EXPECT_EQ(got, "question");
    EXPECT_EQ(end, ::asio::error::eof);
    EXPECT_EQ(answer, "answer");
    // The client has gone: writes fail, at the latest once the ring is full.
    spawn(io, [&]() -> ::asio::awaitable<void> {
        std::string block(64 * 1024, 'w');
        for (int i = 0; i < 64 && !broken; ++i)
            std::tie(broken, std::ignore) =
                co_await ::asio::async_write(*p.server, ::asio::buffer(block), as_tuple);
    });
    run(io);
    EXPECT_EQ(broken, errc::broken_pipe);
}

// A read waiting for data, cancelled, leaves the pipe usable; closed, it is aborted.
TEST_P(AsioTransport, CancelAndCloseWhileAReadWaits) {
    auto p = pair();
    std::error_code cancelled, closed;
    std::string got;
    char b[16];
    p.server->async_read_some(::asio::buffer(b),
                              [&](std::error_code ec, std::size_t) { cancelled = ec; });
    io.restart();
    io.poll();
    p.server->cancel();
    run(io);
    EXPECT_EQ(cancelled, ::asio::error::operation_aborted);
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_write(*p.client, ::asio::buffer("after", 5), use_awaitable);
        auto n = co_await p.server->async_read_some(::asio::buffer(b), use_awaitable);
        got.assign(b, n);
    });
    run(io);
    EXPECT_EQ(got, "after");
    p.server->async_read_some(::asio::buffer(b),
                              [&](std::error_code ec, std::size_t) { closed = ec; });
    io.restart();
    io.poll();
    p.server->close();
    run(io);
    EXPECT_EQ(closed, ::asio::error::operation_aborted);
}

// A write waiting for room (nobody reads), cancelled, reports what went; the pipe stays usable.
TEST_P(AsioTransport, CancelAWriteThatWaitsForRoom) {
    auto p = pair();
    const auto data = npipe::test::pattern(16 << 20, 5);
    std::error_code cancelled;
    std::size_t written = 0;
    ::asio::async_write(*p.client, ::asio::buffer(data), [&](std::error_code ec, std::size_t n) {
        cancelled = ec;
        written = n;
    });
    io.restart();
    io.poll();
    p.client->cancel();
    run(io);
    EXPECT_EQ(cancelled, ::asio::error::operation_aborted);
    ASSERT_GT(written, 0u);
    ASSERT_LT(written, data.size());
    std::string got(written, '\0');
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_read(*p.server, ::asio::buffer(got), use_awaitable);
    });
    run(io);
    EXPECT_TRUE(got == data.substr(0, written));
}

// The idle-pipe pattern: wait with no buffer, then take exactly what available() says is there.
TEST_P(AsioTransport, AsyncWaitThenAvailableSeesTheBytes) {
    auto p = pair();
    std::size_t available = 0;
    std::string got;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await p.server->async_wait(::asio::socket_base::wait_read, use_awaitable);
        available = p.server->available();
        got.resize(available);
        co_await ::asio::async_read(*p.server, ::asio::buffer(got), use_awaitable);
    });
    io.restart();
    io.poll();  // the wait is pending before the bytes come
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await ::asio::async_write(*p.client, ::asio::buffer("ready", 5), use_awaitable);
    });
    run(io);
    EXPECT_EQ(available, 5u);
    EXPECT_EQ(got, "ready");
}

// A client that did not opt in (as a .NET or Mono one never does) gets the plain socket pipe
// of an opted-in async server.
TEST(AsioSharedMemory, AClientThatDidNotOptInGetsTheSocket) {
    ::asio::io_context io;
    auto name = unique_pipe_name("plain");
    na::named_pipe_acceptor acceptor(io, name, pipe_direction::in_out, 1, transmission_mode::byte,
                                     shm());
    EXPECT_TRUE(std::filesystem::exists(acceptor.socket_path() + ".npipe-shm"));
    na::named_pipe_client client(io, name);
    std::string got;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        auto server = co_await acceptor.async_accept(use_awaitable);
        co_await ::asio::async_read(server, ::asio::dynamic_buffer(got), as_tuple);
    });
    spawn(io, [&]() -> ::asio::awaitable<void> {
        co_await client.async_connect(use_awaitable);
        EXPECT_EQ(shm_mappings(), 0u);
        co_await ::asio::async_write(client, ::asio::buffer("plain", 5), use_awaitable);
        client.close();
    });
    run(io);
    EXPECT_EQ(got, "plain");
}

// A synchronous client (another thread) of an async server, over shared memory, both ways, both
// modes.
TEST(AsioSharedMemory, SyncClientAndAsyncServer) {
    for (auto mode : {transmission_mode::byte, transmission_mode::message}) {
        ::asio::io_context io;
        auto name = unique_pipe_name("sync-client");
        na::named_pipe_acceptor acceptor(io, name, pipe_direction::in_out, 1, mode, shm());
        const auto data = npipe::test::pattern(1 << 20, 6);
        spawn(io, [&]() -> ::asio::awaitable<void> {
            auto server = co_await acceptor.async_accept(use_awaitable);
            co_await echo(std::move(server), mode == transmission_mode::message, [] {});
        });
        auto client = std::async(std::launch::async, [&] {
            npipe::named_pipe_client c(".", name, pipe_direction::in_out, shm(8192));
            c.connect(10s);
            std::string back(data.size(), '\0');
            if (mode == transmission_mode::message) {
                c.set_read_mode(transmission_mode::message);
                c.write(npipe::test::pipe_io::bytes(data));
                auto n = c.read(std::as_writable_bytes(std::span(back)));
                back.resize(n);
                EXPECT_TRUE(c.is_message_complete());
            } else {
                auto writer = std::async(std::launch::async,
                                         [&] { c.write(npipe::test::pipe_io::bytes(data)); });
                std::size_t got = 0;
                while (got < back.size()) {
                    auto n = c.read(std::as_writable_bytes(std::span(back).subspan(got)));
                    if (n == 0)
                        break;
                    got += n;
                }
                writer.get();
                back.resize(got);
            }
            EXPECT_EQ(shm_mappings(), 2u);
            return back;
        });
        run(io, 60s);
        ASSERT_EQ(client.wait_for(30s), std::future_status::ready);
        EXPECT_TRUE(client.get() == data)
            << (mode == transmission_mode::message ? "message" : "byte");
    }
}

// An async client of a synchronous server (another thread), over shared memory.
TEST(AsioSharedMemory, AsyncClientAndSyncServer) {
    for (auto mode : {transmission_mode::byte, transmission_mode::message}) {
        auto name = unique_pipe_name("sync-server");
        npipe::named_pipe_server server(name, pipe_direction::in_out, 1, mode, shm());
        auto served = std::async(std::launch::async, [&] {
            server.wait_for_connection(10s);
            std::vector<std::byte> buffer(1 << 16);
            for (;;) {
                auto n = server.read(buffer);
                if (n == 0)
                    break;
                server.write(std::span(buffer).first(n));
            }
        });
        ::asio::io_context io;
        na::named_pipe_client client(io, name, pipe_direction::in_out, shm(8192));
        const auto data =
            npipe::test::pattern(mode == transmission_mode::message ? 60000 : 1 << 20, 7);
        std::string back;
        spawn(io, [&]() -> ::asio::awaitable<void> {
            co_await client.async_connect(use_awaitable);
            if (mode == transmission_mode::message) {
                client.set_read_mode(transmission_mode::message);
                co_await client.async_write_message(::asio::buffer(data), use_awaitable);
                co_await client.async_read_message(::asio::dynamic_buffer(back), use_awaitable);
                EXPECT_TRUE(client.is_message_complete());
                EXPECT_EQ(shm_mappings(), 2u);  // the server has answered: both ends mapped
                client.close();
                co_return;
            }
            std::string received(data.size(), '\0');
            auto reading = [&]() -> ::asio::awaitable<void> {
                co_await ::asio::async_read(client, ::asio::buffer(received), use_awaitable);
            };
            auto writing = [&]() -> ::asio::awaitable<void> {
                co_await ::asio::async_write(client, ::asio::buffer(data), use_awaitable);
            };
            using namespace ::asio::experimental::awaitable_operators;
            co_await (reading() && writing());
            EXPECT_EQ(shm_mappings(), 2u);
            back = std::move(received);
            client.close();
        });
        run(io, 60s);
        ASSERT_EQ(served.wait_for(30s), std::future_status::ready);
        served.get();
        EXPECT_TRUE(back == data) << (mode == transmission_mode::message ? "message" : "byte");
    }
}

// A hundred shared-memory clients and their server pipes on one io_context thread: the reactor
// waits on their bells, no thread per pipe.
TEST(AsioSharedMemory, AHundredClientsOnOneThread) {
    constexpr int clients = 100;
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < 1024)
        GTEST_SKIP() << "needs 1024 descriptors";
    ::asio::io_context io;
    auto name = unique_pipe_name("hundred");
    na::named_pipe_acceptor acceptor(io, name, pipe_direction::in_out,
                                     npipe::max_allowed_server_instances,
                                     transmission_mode::message, shm());
    int echoed = 0, served = 0;
    std::size_t mapped = 0;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        for (int i = 0; i < clients; ++i) {
            auto server = co_await acceptor.async_accept(use_awaitable);
            spawn(io, echo(std::move(server), true, [&] { ++served; }));
        }
    });
    std::vector<std::unique_ptr<na::named_pipe_client>> pipes;
    for (int i = 0; i < clients; ++i) {
        pipes.push_back(
            std::make_unique<na::named_pipe_client>(io, name, pipe_direction::in_out, shm(4096)));
        spawn(io, [&, i, &c = *pipes.back()]() -> ::asio::awaitable<void> {
            co_await c.async_connect(use_awaitable);
            const auto message = npipe::test::pattern(10000, 100 + i);
            for (int round = 0; round < 3; ++round) {
                std::string back;
                co_await c.async_write_message(::asio::buffer(message), use_awaitable);
                co_await c.async_read_message(::asio::dynamic_buffer(back), use_awaitable);
                EXPECT_TRUE(back == message);
            }
            if (++echoed == clients) {
                mapped = shm_mappings();
                for (auto& p : pipes)
                    p->close();
            }
        });
    }
    run(io, 60s);
    EXPECT_EQ(echoed, clients);
    EXPECT_EQ(served, clients);
    EXPECT_EQ(mapped, 2u * clients);
}

// Runs `child` in a forked process, which then waits in it, its pipe open, to be killed.
template <class F>
pid_t fork_child(F child) {
    pid_t pid = ::fork();
    if (pid == 0) {
        child([] {
            for (;;)
                ::pause();
        });
        ::_exit(1);
    }
    return pid;
}

// A synchronous client in a child process, killed with SIGKILL while the async server's read
// waits: the read completes with the end of the stream within a second (the kernel closes the
// child's bells), and writes fail.
TEST(AsioSharedMemory, AKilledClientEndsAPendingAsyncRead) {
    auto name = unique_pipe_name("killc");
    ::asio::io_context io;
    // Listening (the rendezvous too) before the child connects: a client that comes between
    // the socket file and its rendezvous gets the plain socket.
    na::named_pipe_acceptor acceptor(io, name, pipe_direction::in_out, 1, transmission_mode::byte,
                                     shm());
    pid_t pid = fork_child([&](auto hold) {
        npipe::named_pipe_client c(".", name, pipe_direction::in_out, shm(4096));
        c.connect(10s);
        c.write(npipe::test::pipe_io::bytes("r"));
        hold();
    });
    std::optional<na::pipe_stream> server;
    char first = 0;
    std::error_code end, broken;
    std::chrono::steady_clock::time_point reaped, ended;
    spawn(io, [&]() -> ::asio::awaitable<void> {
        server.emplace(co_await acceptor.async_accept(use_awaitable));
        co_await ::asio::async_read(*server, ::asio::buffer(&first, 1), use_awaitable);
        EXPECT_EQ(shm_mappings(), 1u);
        char b;
        auto [ec, n] = co_await server->async_read_some(::asio::buffer(&b, 1), as_tuple);
        ended = std::chrono::steady_clock::now();
        end = ec;
        std::string block(64 * 1024, 'w');
        for (int i = 0; i < 64 && !broken; ++i)
            std::tie(broken, std::ignore) =
                co_await ::asio::async_write(*server, ::asio::buffer(block), as_tuple);
    });
    // The read is pending once the first byte came and the context has nothing else to do.
    io.restart();
    while (first == 0 && io.run_one_for(10s) > 0) {
    }
    ASSERT_EQ(first, 'r');
    io.poll();
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    reaped = std::chrono::steady_clock::now();
    run(io);
    EXPECT_EQ(end, ::asio::error::eof);
    EXPECT_LT(ended - reaped, 1s);
    EXPECT_EQ(broken, errc::broken_pipe);
}

// A synchronous server in a child process, killed with SIGKILL while the async client's write
// waits for room in the full ring: the write fails with broken_pipe within a second.
TEST(AsioSharedMemory, AKilledServerEndsAPendingAsyncWrite) {
    auto name = unique_pipe_name("kills");
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    pid_t pid = fork_child([&](auto hold) {
        npipe::named_pipe_server s(name, pipe_direction::in_out, 1, transmission_mode::byte, shm());
        char one = 1;
        [[maybe_unused]] auto n = ::write(ready[1], &one, 1);
        s.wait_for_connection(10s);
        hold();
    });
    ::close(ready[1]);
    char one;
    ASSERT_EQ(::read(ready[0], &one, 1), 1);
    ::close(ready[0]);
    ::asio::io_context io;
    na::named_pipe_client client(io, name, pipe_direction::in_out, shm(4096));
    client.async_connect([](std::error_code ec) { ASSERT_FALSE(ec) << ec.message(); });
    run(io);
    ASSERT_TRUE(client.is_open());
    ASSERT_EQ(shm_mappings(), 1u);
    const auto data = npipe::test::pattern(1 << 20, 8);
    std::error_code broken;
    std::chrono::steady_clock::time_point failed;
    ::asio::async_write(client, ::asio::buffer(data), [&](std::error_code ec, std::size_t) {
        failed = std::chrono::steady_clock::now();
        broken = ec;
    });
    io.restart();
    io.poll();  // the ring is full: the write waits
    ASSERT_FALSE(broken);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    const auto reaped = std::chrono::steady_clock::now();
    run(io);
    EXPECT_EQ(broken, errc::broken_pipe);
    EXPECT_LT(failed - reaped, 1s);
}

// Through the CLI: `serve --echo --shared-memory` (npipe::asio) echoes what `connect
// --shared-memory` sends; with --message, a library client's messages over shared memory
// (connect refuses message pipes); `serve -- CMD` still refuses it, saying why.
TEST(AsioSharedMemory, CliServeEchoWithSharedMemory) {
    using npipe::test::cli;
    {
        auto name = unique_pipe_name("cliecho");
        npipe::test::child server({cli(), "serve", name, "--echo", "--shared-memory"});
        ASSERT_TRUE(npipe::test::wait_for_server(name, 10s)) << server.err();
        EXPECT_TRUE(std::filesystem::exists(npipe::pipe_path(name) + ".npipe-shm"));
        const auto data = npipe::test::pattern(3 << 20, 9);
        auto client = npipe::test::run(
            {cli(), "connect", name, "--shared-memory", "--timeout", "10s"}, data, 60s);
        EXPECT_EQ(client.exit_code, 0) << client.err;
        EXPECT_TRUE(client.out == data) << client.out.size() << " bytes back";
    }
    {
        auto name = unique_pipe_name("cliechom");
        npipe::test::child server({cli(), "serve", name, "--echo", "--message", "--shared-memory"});
        ASSERT_TRUE(npipe::test::wait_for_server(name, 10s)) << server.err();
        npipe::named_pipe_client c(".", name, pipe_direction::in_out, shm(4096));
        c.connect(10s);
        EXPECT_EQ(shm_mappings(), 1u);
        c.set_read_mode(transmission_mode::message);
        for (std::size_t size : {std::size_t{1}, std::size_t{70000}}) {
            const auto message = npipe::test::pattern(size, 10);
            c.write(npipe::test::pipe_io::bytes(message));
            std::string back(size + 1, '\0');
            back.resize(c.read(std::as_writable_bytes(std::span(back))));
            EXPECT_TRUE(c.is_message_complete());
            EXPECT_TRUE(back == message) << size;
        }
    }
    {
        // --echo's idle timeout drops a shared-memory client that sends nothing.
        auto name = unique_pipe_name("cliidle");
        npipe::test::child server(
            {cli(), "serve", name, "--echo", "--shared-memory", "--idle-timeout", "200ms"});
        ASSERT_TRUE(npipe::test::wait_for_server(name, 10s)) << server.err();
        npipe::named_pipe_client c(".", name, pipe_direction::in_out, shm(4096));
        c.connect(10s);
        EXPECT_EQ(shm_mappings(), 1u);
        auto read = std::async(std::launch::async, [&] {
            std::byte b[1];
            return c.read(b);
        });
        ASSERT_EQ(read.wait_for(20s), std::future_status::ready) << "not dropped";
        EXPECT_EQ(read.get(), 0u);
    }
    auto refused = npipe::test::run(
        {cli(), "serve", unique_pipe_name("cmd"), "--shared-memory", "--", "cat"}, {}, 10s);
    EXPECT_EQ(refused.exit_code, 2) << refused.err;
    EXPECT_NE(refused.err.find("CMD"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace npipe_asio_test
