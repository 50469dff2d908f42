// `npipe serve NAME --echo [--message]`: an asynchronous echo server on one thread (npipe::asio).
// Every client's bytes, or messages, go straight back to it, until SIGINT or SIGTERM.
//
// Built to hold many thousands of idle clients: no thread per client, and no buffer either while
// a client is quiet. A byte pipe waits for readability with no buffer, then reads what is there
// into a buffer that lives only until it is written back; a message pipe's read allocates only
// as a message arrives (npipe::asio reads records into a per-thread scratch buffer).
#include <sys/resource.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"
#include "npipe/options.hpp"

namespace npipe::cli {
namespace {

constexpr auto use_awaitable = ::asio::use_awaitable;
constexpr auto as_tuple = ::asio::experimental::as_tuple(::asio::use_awaitable);

// Descriptors kept for everything but clients (listener, epoll, eventfds, stdio, ...).
constexpr rlim_t reserved_fds = 64;
// What "unlimited" should hold: the number of concurrent clients npipe promises to serve.
constexpr rlim_t wanted_clients = 10000;

// Raises the soft open-file limit to the hard limit, and says so when that is still short of
// what max_instances clients need. Returns the number of clients that fit.
rlim_t raise_fd_limit(int max_instances) {
    const rlim_t wanted =
        (max_instances == max_allowed_server_instances ? wanted_clients
                                                       : static_cast<rlim_t>(max_instances)) +
        reserved_fds;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return wanted - reserved_fds;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    if (limit.rlim_cur < wanted) {
        rlim_t fit = limit.rlim_cur > reserved_fds ? limit.rlim_cur - reserved_fds : 1;
        std::cerr << "npipe: the open-file limit is " << limit.rlim_cur << " (hard limit "
                  << limit.rlim_max << "): about " << fit << " clients can be served at once, not "
                  << wanted - reserved_fds
                  << "; more wait in the backlog (raise the limit with ulimit -Hn / -n)\n";
        return fit;
    }
    return wanted - reserved_fds;
}

::asio::awaitable<void> echo_bytes(npipe::asio::pipe_stream pipe) {
    for (;;) {
        // Wait with no buffer; take one only for the bytes that are there.
        auto [wait_ec] = co_await pipe.async_wait(::asio::socket_base::wait_read, as_tuple);
        if (wait_ec)
            co_return;
        std::error_code ec;
        std::size_t size = std::clamp<std::size_t>(pipe.available(ec), 1, 64 * 1024);
        auto buffer = std::make_unique_for_overwrite<char[]>(size);
        auto [read_ec, n] =
            co_await pipe.async_read_some(::asio::buffer(buffer.get(), size), as_tuple);
        if (read_ec)
            co_return;  // end of stream, or the peer reset: done with this client
        auto [write_ec, written] =
            co_await ::asio::async_write(pipe, ::asio::buffer(buffer.get(), n), as_tuple);
        if (write_ec)
            co_return;
    }
}

::asio::awaitable<void> echo_messages(npipe::asio::pipe_stream pipe) {
    std::vector<char> message;
    for (;;) {
        auto [read_ec, n] =
            co_await pipe.async_read_message(::asio::dynamic_buffer(message), as_tuple);
        if (read_ec == npipe::errc::message_too_large)
            continue;  // skipped by the pipe; the messages after it are fine
        if (read_ec)
            co_return;
        auto [write_ec, written] =
            co_await pipe.async_write_message(::asio::buffer(message), as_tuple);
        if (write_ec)
            co_return;
        message.clear();
        message.shrink_to_fit();  // an idle client keeps no buffer
    }
}

::asio::awaitable<void> accept_clients(npipe::asio::named_pipe_acceptor& acceptor, bool message) {
    auto ex = co_await ::asio::this_coro::executor;
    ::asio::steady_timer pause(ex);
    bool out_of_fds = false;
    for (;;) {
        auto [ec, pipe] = co_await acceptor.async_accept(as_tuple);
        if (ec == ::asio::error::operation_aborted || ec == ::asio::error::bad_descriptor)
            co_return;  // stopping
        if (ec == std::error_code(EMFILE, std::system_category()) ||
            ec == std::error_code(ENFILE, std::system_category()) ||
            ec == ::asio::error::no_descriptors) {
            // The client stays queued; try again once some descriptor may have been freed.
            if (!out_of_fds)
                std::cerr << "npipe: out of file descriptors; new clients wait until others "
                             "leave\n";
            out_of_fds = true;
            pause.expires_after(std::chrono::milliseconds(50));
            co_await pause.async_wait(as_tuple);
            continue;
        }
        if (ec) {
            std::cerr << "npipe: pipe '" << acceptor.pipe_name() << "': accept: " << ec.message()
                      << '\n';
            continue;
        }
        out_of_fds = false;
        if (message)
            ::asio::co_spawn(ex, echo_messages(std::move(pipe)), ::asio::detached);
        else
            ::asio::co_spawn(ex, echo_bytes(std::move(pipe)), ::asio::detached);
    }
}

}  // namespace

// Declared in commands.hpp as
//   void run_echo_server(const std::string& name, bool message, int max_instances,
//                        const pipe_options& options = {});
void run_echo_server(const std::string& name, bool message, int max_instances,
                     const pipe_options& options) {
    raise_fd_limit(max_instances);
    ::asio::io_context io(1);
    npipe::asio::named_pipe_acceptor acceptor(
        io, name, pipe_direction::in_out, max_instances,
        message ? transmission_mode::message : transmission_mode::byte, options);
    ::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (ec)
            return;
        acceptor.close();  // removes the socket file
        io.stop();         // the clients' pipes are closed as their coroutines are destroyed
    });
    ::asio::co_spawn(io, accept_clients(acceptor, message), ::asio::detached);
    io.run();
}

}  // namespace npipe::cli
