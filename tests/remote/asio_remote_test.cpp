// Async remote pipes: npipe::asio::named_pipe_client through `npipe gateway` over TLS 1.3, with
// the connect, handshake and forwarding on the caller's executor (no thread per connection).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_server.hpp"
#include "remote_support.hpp"

using namespace npipe;
using namespace npipe::test;
using namespace std::chrono_literals;
namespace na = npipe::asio;

namespace {

std::size_t threads() {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task"))
        ++n;
    return n;
}

pipe_options remote(std::shared_ptr<remote_options> tls = client_tls()) {
    pipe_options options;
    options.remote = std::move(tls);
    return options;
}

// An echo server on its own thread (an asio acceptor and one coroutine per client): each
// client's bytes come back as they arrive; its end of stream ends the echo.
class echo_server {
  public:
    explicit echo_server(const std::string& name) : acceptor_(io_, name) {
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~echo_server() {
        io_.stop();
        thread_.join();
    }

  private:
    void accept() {
        acceptor_.async_accept([this](std::error_code ec, na::pipe_stream pipe) {
            if (ec)
                return;
            ::asio::co_spawn(io_, echo(std::move(pipe)), ::asio::detached);
            accept();
        });
    }
    static ::asio::awaitable<void> echo(na::pipe_stream pipe) {
        std::array<char, 16 * 1024> buffer;
        for (;;) {
            auto [ec, n] = co_await pipe.async_read_some(
                ::asio::buffer(buffer), ::asio::experimental::as_tuple(::asio::use_awaitable));
            if (ec)
                break;
            auto [wec, w] =
                co_await ::asio::async_write(pipe, ::asio::buffer(buffer.data(), n),
                                             ::asio::experimental::as_tuple(::asio::use_awaitable));
            if (wec)
                co_return;
        }
        pipe.shutdown_write();
    }

    ::asio::io_context io_;
    na::named_pipe_acceptor acceptor_;
    std::thread thread_;
};

std::string pattern_for(std::size_t i) {
    return pattern(4096 + i * 37, static_cast<std::uint32_t>(i + 1));
}

TEST(AsioRemote, TwoHundredClientsOnOneThreadEachGetTheirBytesBack) {
    auto name = unique_pipe_name("async200");
    echo_server server(name);
    running_gateway gw(base_options({name}));
    const auto threads_before = threads();
    ::asio::io_context io(1);
    constexpr std::size_t clients = 200;
    std::size_t connected = 0, intact = 0;
    std::size_t threads_while_connected = 0;
    for (std::size_t i = 0; i < clients; ++i) {
        ::asio::co_spawn(
            io,
            [&, i]() -> ::asio::awaitable<void> {
                na::named_pipe_client client(io, at_port(gw.port()), name, pipe_direction::in_out,
                                             remote());
                co_await client.async_connect(20s, ::asio::use_awaitable);
                if (++connected == clients)
                    threads_while_connected = threads();
                EXPECT_EQ(client.transmission_mode(), transmission_mode::byte);
                auto mine = pattern_for(i);
                co_await ::asio::async_write(client, ::asio::buffer(mine), ::asio::use_awaitable);
                client.shutdown_write();  // half-close: the echo still comes back
                std::string got;
                auto [ec, n] = co_await ::asio::async_read(
                    client, ::asio::dynamic_buffer(got),
                    ::asio::experimental::as_tuple(::asio::use_awaitable));
                EXPECT_EQ(ec, ::asio::error::eof);
                if (got == mine)
                    ++intact;
                client.close();
            },
            [](std::exception_ptr e) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& x) {
                        ADD_FAILURE() << "client: " << x.what();
                    }
                }
            });
    }
    io.run_for(60s);
    EXPECT_TRUE(io.stopped());
    EXPECT_EQ(connected, clients);
    EXPECT_EQ(intact, clients);
    // All 200 at once on this thread: the TLS connections and their forwarding added none.
    EXPECT_EQ(threads_while_connected, threads_before);
}

TEST(AsioRemote, MessageModeKeepsBoundariesAndEndOfStream) {
    auto name = unique_pipe_name("asyncmsg");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    running_gateway gw(base_options({name}));
    const std::vector<std::size_t> sizes = {1, 0, 5, 70'000, 1 << 20, 0, 65'536, 2};
    auto echo = std::async(std::launch::async, [&] {
        server.wait_for_connection(20s);
        server.set_read_mode(transmission_mode::message);
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            std::vector<std::byte> message;
            std::byte chunk[8192];
            do {
                std::size_t n = server.read(chunk);
                message.insert(message.end(), chunk, chunk + n);
            } while (!server.is_message_complete());
            server.write(message);
        }
        server.disconnect();
    });
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw.port()), name, pipe_direction::in_out, remote());
    std::vector<std::size_t> got;
    bool ended = false;
    ::asio::co_spawn(
        io,
        [&]() -> ::asio::awaitable<void> {
            co_await client.async_connect(20s, ::asio::use_awaitable);
            EXPECT_EQ(client.transmission_mode(), transmission_mode::message);
            client.set_read_mode(transmission_mode::message);
            for (std::size_t i = 0; i < sizes.size(); ++i) {
                auto m = pattern(sizes[i], static_cast<std::uint32_t>(i + 7));
                co_await client.async_write_message(::asio::buffer(m), ::asio::use_awaitable);
                std::string back;
                co_await client.async_read_message(::asio::dynamic_buffer(back),
                                                   ::asio::use_awaitable);
                EXPECT_EQ(back, m) << "message " << i;
                got.push_back(back.size());
            }
            std::string rest;
            auto [ec, n] = co_await client.async_read_message(
                ::asio::dynamic_buffer(rest),
                ::asio::experimental::as_tuple(::asio::use_awaitable));
            ended = ec == ::asio::error::eof && n == 0;
            client.close();  // ends the forwarding too: the context runs out of work
        },
        ::asio::detached);
    io.run_for(60s);
    echo.get();
    EXPECT_EQ(got, sizes);
    EXPECT_TRUE(ended) << "no end of stream after the server's disconnect";
}

// Runs one async_connect to completion on a fresh io_context and returns its error.
std::error_code connect_error(na::named_pipe_client& client, std::chrono::milliseconds timeout,
                              ::asio::io_context& io) {
    std::optional<std::error_code> result;
    client.async_connect(timeout, [&](std::error_code ec) { result = ec; });
    // Until the connect completes: a connected pipe's forwarding keeps the context busy.
    while (!result && io.run_one_for(30s) != 0) {
    }
    return result.value_or(make_error_code(std::errc::interrupted));
}

TEST(AsioRemote, UnknownPipeWithoutWaitIsTheGatewaysAnswer) {
    running_gateway gw(base_options({"npipe-test-async-none"}));
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw.port()), "npipe-test-async-none",
                                 pipe_direction::in_out, remote());
    EXPECT_EQ(client.socket_path(), "//" + at_port(gw.port()) + "/pipe/npipe-test-async-none");
    EXPECT_EQ(connect_error(client, 0ms, io), std::errc::no_such_file_or_directory);
    io.restart();
    // With a short wait: asked again until the deadline, then a timeout.
    EXPECT_EQ(connect_error(client, 300ms, io), errc::timed_out);
    EXPECT_GE(count_of(gw.log(), "refused: no such pipe"), 3) << gw.log();
}

TEST(AsioRemote, ConnectWaitsForThePipeToAppear) {
    auto name = unique_pipe_name("asynclater");
    running_gateway gw(base_options({name}));
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw.port()), name, pipe_direction::in_out, remote());
    auto connected = client.async_connect(20s, ::asio::use_future);
    std::thread runner([&] { io.run_for(30s); });
    ASSERT_TRUE(gw.wait_log("refused: no such pipe")) << gw.log();
    named_pipe_server server(name);
    server.wait_for_connection(20s);
    EXPECT_NO_THROW(connected.get());
    std::promise<bool> was_open;
    ::asio::post(io, [&] {
        was_open.set_value(client.is_open());
        client.close();  // ends the forwarding too: the context runs out of work
    });
    EXPECT_TRUE(was_open.get_future().get());
    runner.join();
    EXPECT_TRUE(io.stopped());
}

TEST(AsioRemote, WrongTokenIsAccessDenied) {
    auto name = unique_pipe_name("asynctoken");
    named_pipe_server server(name);
    running_gateway gw(base_options({name}));
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw.port()), name, pipe_direction::in_out,
                                 remote(client_tls("wrong-token")));
    EXPECT_EQ(connect_error(client, 10s, io), errc::access_denied);
    EXPECT_TRUE(gw.wait_log("refused: the gateway refused the token")) << gw.log();
    std::error_code ec;
    server.wait_for_connection(0ms, ec);
    EXPECT_EQ(ec, errc::timed_out) << "a refused client reached the pipe";
}

TEST(AsioRemote, UntrustedGatewayIsAccessDenied) {
    auto name = unique_pipe_name("asyncca");
    running_gateway gw(base_options({name}));
    auto tls = client_tls();
    tls->ca_file = certs().at("other_ca.pem");
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw.port()), name, pipe_direction::in_out, remote(tls));
    EXPECT_EQ(connect_error(client, 10s, io), errc::access_denied);
}

TEST(AsioRemote, TimeoutCoversASilentServer) {
    silent_listener silent;
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(silent.port()), "x", pipe_direction::in_out, remote());
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(connect_error(client, 300ms, io), errc::timed_out);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 5s);
}

TEST(AsioRemote, CancellationAndCloseEndAWaitingConnect) {
    auto name = unique_pipe_name("asynccancel");
    running_gateway gw(base_options({name}));
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw.port()), name, pipe_direction::in_out, remote());
    ::asio::cancellation_signal cancel;
    std::error_code first = make_error_code(std::errc::interrupted);
    client.async_connect(20s, ::asio::bind_cancellation_slot(
                                  cancel.slot(), [&](std::error_code ec) { first = ec; }));
    // Cancelled once the gateway has answered "no such pipe" and the client waits to ask again.
    while (count_of(gw.log(), "refused: no such pipe") == 0 && !io.stopped())
        io.run_one_for(100ms);
    cancel.emit(::asio::cancellation_type::terminal);
    io.run_for(10s);
    EXPECT_EQ(first, ::asio::error::operation_aborted);
    // close() ends the wait too, even in the middle of an attempt.
    io.restart();
    std::error_code second = make_error_code(std::errc::interrupted);
    client.async_connect(20s, [&](std::error_code ec) { second = ec; });
    ::asio::post(io, [&] { client.close(); });
    io.run_for(10s);
    EXPECT_EQ(second, ::asio::error::operation_aborted);
}

TEST(AsioRemote, GatewayGoneEndsTheStream) {
    auto name = unique_pipe_name("asyncstop");
    named_pipe_server server(name);
    auto gw = std::make_unique<running_gateway>(base_options({name}));
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw->port()), name, pipe_direction::in_out, remote());
    EXPECT_FALSE(connect_error(client, 10s, io));
    server.wait_for_connection(10s);
    // The gateway goes away: the forwarded connection ends, the client reads end of stream.
    gw.reset();
    io.restart();
    std::string rest;
    std::error_code read_ec;
    ::asio::async_read(client, ::asio::dynamic_buffer(rest),
                       [&](std::error_code ec, std::size_t) { read_ec = ec; });
    io.run_for(10s);
    EXPECT_TRUE(read_ec == ::asio::error::eof || read_ec == errc::broken_pipe) << read_ec.message();
}

// A connection the gateway drops without a close_notify (its idle timeout here, a dead network
// alike) must not read as the server's clean end: a read fails with broken_pipe, in both modes.
void expect_dropped_connection_is_an_error(transmission_mode mode) {
    auto name = unique_pipe_name("asyncidle");
    named_pipe_server server(name, pipe_direction::in_out, 1, mode);
    auto options = base_options({name});
    options.idle_timeout = 300ms;
    running_gateway gw(options);
    ::asio::io_context io(1);
    na::named_pipe_client client(io, at_port(gw.port()), name, pipe_direction::in_out, remote());
    ASSERT_FALSE(connect_error(client, 10s, io));
    server.wait_for_connection(10s);
    io.restart();
    std::string got;
    std::optional<std::error_code> read_ec;
    auto done = [&](std::error_code ec, std::size_t) { read_ec = ec; };
    if (mode == transmission_mode::message) {
        client.set_read_mode(transmission_mode::message);
        client.async_read_message(::asio::dynamic_buffer(got), done);
    } else {
        ::asio::async_read(client, ::asio::dynamic_buffer(got), done);
    }
    while (!read_ec && io.run_one_for(20s) != 0) {
    }
    ASSERT_TRUE(read_ec) << "the read never completed";
    EXPECT_EQ(*read_ec, errc::broken_pipe) << read_ec->message();
    EXPECT_TRUE(gw.wait_log("ended: " + std::error_code(errc::timed_out).message())) << gw.log();
}

TEST(AsioRemote, DroppedConnectionIsAnErrorNotEndOfStream) {
    expect_dropped_connection_is_an_error(transmission_mode::byte);
}

TEST(AsioRemote, DroppedMessageConnectionIsAnErrorNotEndOfStream) {
    expect_dropped_connection_is_an_error(transmission_mode::message);
}

}  // namespace
