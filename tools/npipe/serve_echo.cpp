// `npipe serve NAME --echo [--message]`: an asynchronous echo server on one thread (npipe::asio).
// Every client's bytes, or messages, go straight back to it, until SIGINT or SIGTERM.
//
// Built to hold many thousands of idle clients: no thread per client, and no buffer either while
// a client is quiet. A byte pipe waits for readability with no buffer, then reads what is there
// into a buffer that lives only until it is written back; a message pipe's read allocates only
// as a message arrives (npipe::asio reads records into a per-thread scratch buffer).
//
// Clients cannot hold the server hostage: --idle-timeout drops one that sends nothing,
// --write-timeout one that stops taking its echo, and a message client that breaks the framing
// or sends an oversize message is dropped at once; each with its reason on stderr. The others
// go on being served.
#include <sys/resource.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "npipe/asio/deadline_list.hpp"
#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"
#include "npipe/options.hpp"
#include "relay.hpp"

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

// Says on stderr why a client was dropped, naming it by its credentials.
void report_drop(npipe::asio::pipe_stream& pipe, const std::string& why) {
    std::cerr << "npipe: pipe '" << pipe.pipe_name() << "': dropped a client";
    try {
        auto peer = pipe.get_peer_credentials();
        std::cerr << " (pid " << peer.pid << ", uid " << peer.uid << ")";
    } catch (const std::exception&) {
    }
    std::cerr << ": " << why << '\n';
}

std::string milliseconds_text(std::chrono::milliseconds ms) {
    return std::to_string(ms.count()) + " ms";
}

// A connection's place in the deadline lists: the library's entry plus the pipe to close.
struct client_entry : npipe::asio::deadline_entry {
    explicit client_entry(npipe::asio::pipe_stream& p) : pipe(&p) {}
    npipe::asio::pipe_stream* pipe;
};

// A list that drops (closes, saying why) the clients whose timeout expires: the pending
// operation completes with operation_aborted and the client's coroutine ends.
npipe::asio::deadline_list::expiry_handler drop_with(std::string why) {
    return [why = std::move(why)](npipe::asio::deadline_entry& e) {
        auto& client = static_cast<client_entry&>(e);
        report_drop(*client.pipe, why);
        client.pipe->close();
    };
}

// The two states a connection waits in: for its peer's next bytes (idle timeout), and for its
// peer to take our echo (write timeout, or the idle timeout when it is shorter or alone: no
// byte moves either way then).
struct echo_limits {
    echo_limits(const ::asio::any_io_executor& ex, const relay_options& limits,
                std::size_t max_message)
        : max_message_size(max_message),
          reading(ex, limits.idle_timeout,
                  drop_with("nothing received for " + milliseconds_text(limits.idle_timeout) +
                            " (idle timeout)")),
          writing(
              ex, write_limit(limits),
              drop_with(write_is_idle(limits)
                            ? "nothing moved for " + milliseconds_text(limits.idle_timeout) +
                                  " (idle timeout)"
                            : "read nothing of our echo for " +
                                  milliseconds_text(limits.write_timeout) + " (write timeout)")) {}
    std::size_t max_message_size;
    npipe::asio::deadline_list reading;
    npipe::asio::deadline_list writing;

  private:
    static bool write_is_idle(const relay_options& l) {
        return l.idle_timeout.count() > 0 &&
               (l.write_timeout.count() <= 0 || l.idle_timeout < l.write_timeout);
    }
    static std::chrono::milliseconds write_limit(const relay_options& l) {
        return write_is_idle(l) ? l.idle_timeout : l.write_timeout;
    }
};

// Reports a read failure other than the plain end of a client, or our own close (a timeout
// already said why, or the server is stopping).
void report_read_error(npipe::asio::pipe_stream& pipe, std::error_code ec,
                       const echo_limits& limits) {
    if (ec == ::asio::error::eof || ec == ::asio::error::operation_aborted)
        return;
    if (ec == npipe::errc::message_too_large)
        report_drop(pipe, "oversize message (over the " + std::to_string(limits.max_message_size) +
                              "-byte limit)");
    else if (ec == npipe::errc::protocol_error)
        report_drop(pipe, "malformed frame (" + ec.message() + ")");
    else if (ec == npipe::errc::broken_pipe)
        report_drop(pipe, "the stream ended inside a message");
    else
        report_drop(pipe, "read: " + ec.message());
}

// A write failure other than a client that went away before taking its echo.
void report_write_error(npipe::asio::pipe_stream& pipe, std::error_code ec) {
    if (ec != npipe::errc::broken_pipe && ec != ::asio::error::operation_aborted)
        report_drop(pipe, "write: " + ec.message());
}

::asio::awaitable<void> echo_bytes(npipe::asio::pipe_stream pipe, echo_limits& limits) {
    client_entry entry(pipe);
    for (;;) {
        // Wait with no buffer; take one only for the bytes that are there.
        limits.reading.watch(entry);
        auto [wait_ec] = co_await pipe.async_wait(::asio::socket_base::wait_read, as_tuple);
        if (wait_ec)
            co_return report_read_error(pipe, wait_ec, limits);
        std::error_code ec;
        std::size_t size = std::clamp<std::size_t>(pipe.available(ec), 1, 64 * 1024);
        auto buffer = std::make_unique_for_overwrite<char[]>(size);
        auto [read_ec, n] =
            co_await pipe.async_read_some(::asio::buffer(buffer.get(), size), as_tuple);
        if (read_ec)
            co_return report_read_error(pipe, read_ec,
                                        limits);  // end of stream: done with this client
        // Write piece by piece: every piece the peer takes restarts its write timeout.
        for (std::size_t done = 0; done < n;) {
            limits.writing.watch(entry);
            auto [write_ec, written] = co_await pipe.async_write_some(
                ::asio::buffer(buffer.get() + done, n - done), as_tuple);
            if (write_ec)
                co_return report_write_error(pipe, write_ec);
            done += written;
        }
    }
}

::asio::awaitable<void> echo_messages(npipe::asio::pipe_stream pipe, echo_limits& limits) {
    client_entry entry(pipe);
    std::vector<char> message;
    for (;;) {
        // The idle timeout runs until a whole message is in: a peer that trickles one (or
        // claims a length it never sends) is dropped like a silent one.
        limits.reading.watch(entry);
        auto [read_ec, n] =
            co_await pipe.async_read_message(::asio::dynamic_buffer(message), as_tuple);
        if (read_ec)
            co_return report_read_error(pipe, read_ec, limits);
        limits.writing.watch(entry);
        auto [write_ec, written] =
            co_await pipe.async_write_message(::asio::buffer(message), as_tuple);
        if (write_ec)
            co_return report_write_error(pipe, write_ec);
        message.clear();
        message.shrink_to_fit();  // an idle client keeps no buffer
    }
}

::asio::awaitable<void> accept_clients(npipe::asio::named_pipe_acceptor& acceptor, bool message,
                                       echo_limits& limits) {
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
            ::asio::co_spawn(ex, echo_messages(std::move(pipe), limits), ::asio::detached);
        else
            ::asio::co_spawn(ex, echo_bytes(std::move(pipe), limits), ::asio::detached);
    }
}

}  // namespace

void run_echo_server(const std::string& name, bool message, int max_instances,
                     const pipe_options& options, const relay_options& timeouts) {
    raise_fd_limit(max_instances);
    ::asio::io_context io(1);
    npipe::asio::named_pipe_acceptor acceptor(
        io, name, pipe_direction::in_out, max_instances,
        message ? transmission_mode::message : transmission_mode::byte, options);
    ::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
    signals.async_wait([&](std::error_code ec, int) {
        if (ec)
            return;
        acceptor.close();  // removes the socket file
        io.stop();         // the clients' pipes are closed as their coroutines are destroyed
    });
    // Declared after the io_context: destroyed before the client coroutines it may still hold.
    echo_limits limits(io.get_executor(), timeouts, options.max_message_size);
    ::asio::co_spawn(io, accept_clients(acceptor, message, limits), ::asio::detached);
    io.run();
}

}  // namespace npipe::cli
