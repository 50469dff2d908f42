// Shared by the npipe::asio tests (asio_*_test.cpp, one executable: asio_test): the includes,
// running a context with a limit, coroutines that fail the test when they throw, a connected pair.
#pragma once

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

namespace npipe_asio_test {

namespace na = npipe::asio;
using namespace std::chrono_literals;
using npipe::errc;
using npipe::test::unique_pipe_name;

#if ASIO_VERSION >= 102400
inline constexpr auto& deferred = ::asio::deferred;
#else
inline constexpr auto& deferred = ::asio::experimental::deferred;
#endif
inline constexpr auto use_awaitable = ::asio::use_awaitable;
inline constexpr auto as_tuple = ::asio::experimental::as_tuple(::asio::use_awaitable);

// Runs the context until it has no more work; fails (rather than hangs) after `limit`.
inline void run(::asio::io_context& io, std::chrono::milliseconds limit = 20s) {
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

inline std::string text(const std::vector<char>& v, std::size_t n) {
    return std::string(v.data(), n);
}

inline double process_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

struct connected_pair {
    std::optional<na::named_pipe_acceptor> acceptor;
    std::optional<na::pipe_stream> server;
    std::optional<na::named_pipe_client> client;
};

inline connected_pair make_pair(::asio::io_context& io,
                                npipe::transmission_mode mode = npipe::transmission_mode::byte,
                                const npipe::pipe_options& server_options = {},
                                const npipe::pipe_options& client_options = {}) {
    connected_pair p;
    auto name = unique_pipe_name("pair");
    p.acceptor.emplace(io, name, npipe::pipe_direction::in_out, npipe::max_allowed_server_instances,
                       mode, server_options);
    p.client.emplace(io, name, npipe::pipe_direction::in_out, client_options);
    p.acceptor->async_accept([&](std::error_code ec, na::pipe_stream s) {
        EXPECT_FALSE(ec) << ec.message();
        p.server.emplace(std::move(s));
    });
    p.client->async_connect([](std::error_code ec) { EXPECT_FALSE(ec) << ec.message(); });
    run(io);
    EXPECT_TRUE(p.server && p.server->is_open());
    return p;
}

// Sends each client's bytes (or messages) straight back until it closes, then calls done.
// Sends each client's bytes (or messages) straight back until it closes, then calls done.
inline ::asio::awaitable<void> echo(na::pipe_stream pipe, bool message,
                                    std::function<void()> done) {
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

}  // namespace npipe_asio_test
