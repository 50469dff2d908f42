// `npipe serve NAME --echo [--message]`: an asynchronous echo server on one thread (npipe::asio).
// Every client's bytes, or messages, go straight back to it, until SIGINT, SIGTERM or SIGHUP.
//
// Built to hold many thousands of idle clients: no thread per client, and no buffer either while
// a client is quiet. A byte pipe waits for readability with no buffer, then reads what is there
// into a buffer that lives only until it is written back; a message pipe's read allocates only
// as a message arrives (npipe::asio reads records into a per-thread scratch buffer).
//
// Clients cannot hold the server hostage: --idle-timeout drops one that sends nothing,
// --write-timeout one that stops taking its echo, and a message client that breaks the framing
// or sends an oversize message is dropped at once; each with its reason on stderr. The others
// go on being served. The messages held at once share a memory budget (twice the largest
// message): clients that send big messages and never read cost the server that much at most.
//
// On Windows (npipe.exe) the same server runs on npipe::asio's overlapped pipes; there is no
// open-file limit to raise, and Ctrl+C / Ctrl+Break stop it (the C runtime raises SIGINT and
// SIGBREAK for them; Windows has no SIGHUP).
#ifndef _WIN32
#include <sys/resource.h>
#endif

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
#include <cstddef>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cleanup.hpp"
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

#ifndef _WIN32
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
#endif

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

// The message bytes all clients of a message-mode echo server hold at once: a message being
// received, or waiting for its client to take the echo. Every client's buffer is charged here
// (by capacity, as allocated); a charge that would exceed the budget drops the largest holder,
// so clients that send big messages and never read cost the server at most the budget, however
// many they are. A client whose own buffer is the largest is the one dropped.
class message_budget {
  public:
    // A client's share: lives in its coroutine, linked here while it holds bytes.
    struct holder {
        holder(message_budget& b, npipe::asio::pipe_stream& p) : budget(b), pipe(&p) {}
        ~holder() {
            if (bytes > 0)  // never after the budget is gone: it zeroes what it leaves
                budget.release(*this);
        }
        holder(const holder&) = delete;
        holder& operator=(const holder&) = delete;

        message_budget& budget;
        npipe::asio::pipe_stream* pipe;
        std::size_t bytes = 0;
        bool dropped = false;  // the budget dropped this client (it no longer counts)
        holder* prev = nullptr;
        holder* next = nullptr;
    };

    explicit message_budget(std::size_t limit) : limit_(limit) {}
    // Client coroutines may be destroyed after the budget (with the io_context): detach them.
    ~message_budget() {
        while (head_) {
            head_->bytes = 0;
            unlink(*head_);
        }
    }

    std::size_t limit() const noexcept { return limit_; }

    // Charges `n` more bytes to `h`; false when `h` must give up its message instead.
    bool charge(holder& h, std::size_t n) {
        if (h.dropped)
            return false;
        while (used_ + n > limit_) {
            holder* largest = nullptr;
            for (holder* o = head_; o; o = o->next) {
                if (o != &h && (!largest || o->bytes > largest->bytes))
                    largest = o;
            }
            if (!largest || largest->bytes <= h.bytes + n) {
                drop(h);
                return false;
            }
            drop(*largest);
            // Its pending operation completes with operation_aborted; its coroutine then frees
            // the buffer.
            largest->pipe->close();
        }
        if (h.bytes == 0)
            link(h);
        h.bytes += n;
        used_ += n;
        return true;
    }

    // Gives back `n` of the bytes charged to `h` (a block it has freed).
    void give_back(holder& h, std::size_t n) noexcept {
        if (h.dropped || n == 0)
            return;
        n = std::min(n, h.bytes);
        h.bytes -= n;
        used_ -= n;
        if (h.bytes == 0)
            unlink(h);
    }

    // Gives back everything `h` holds (its buffer has been freed).
    void release(holder& h) noexcept {
        if (h.bytes > 0 && !h.dropped) {
            used_ -= h.bytes;
            unlink(h);
        }
        h.bytes = 0;
    }

  private:
    void drop(holder& h) {
        report_drop(*h.pipe, "holding " + std::to_string(h.bytes) +
                                 " bytes of messages, the most of the server's " +
                                 std::to_string(limit_) + "-byte message memory budget");
        if (h.bytes > 0) {
            used_ -= h.bytes;
            unlink(h);
        }
        h.dropped = true;
    }
    void link(holder& h) noexcept {
        h.prev = nullptr;
        h.next = head_;
        if (head_)
            head_->prev = &h;
        head_ = &h;
    }
    void unlink(holder& h) noexcept {
        (h.prev ? h.prev->next : head_) = h.next;
        if (h.next)
            h.next->prev = h.prev;
        h.prev = h.next = nullptr;
    }

    std::size_t limit_;
    std::size_t used_ = 0;
    holder* head_ = nullptr;
};

// A DynamicBuffer_v2 over a client's message vector that charges every allocation to the
// message budget (growth fails, and the message is given up, when the budget says no).
class budgeted_buffer {
  public:
    using const_buffers_type = ::asio::const_buffer;
    using mutable_buffers_type = ::asio::mutable_buffer;

    budgeted_buffer(std::vector<char>& v, message_budget::holder& h, std::size_t max_size)
        : v_(&v), holder_(&h), max_size_(max_size) {}

    std::size_t size() const noexcept { return v_->size(); }
    std::size_t max_size() const noexcept { return max_size_; }
    std::size_t capacity() const noexcept { return v_->capacity(); }
    const_buffers_type data(std::size_t pos, std::size_t n) const noexcept {
        pos = std::min(pos, v_->size());
        return ::asio::const_buffer(v_->data() + pos, std::min(n, v_->size() - pos));
    }
    mutable_buffers_type data(std::size_t pos, std::size_t n) noexcept {
        pos = std::min(pos, v_->size());
        return ::asio::mutable_buffer(v_->data() + pos, std::min(n, v_->size() - pos));
    }
    void grow(std::size_t n) {
        std::size_t need = v_->size() + n;
        if (need > max_size_)
            throw std::length_error("message too large");
        if (need > v_->capacity()) {
            // The old block lives on while it is copied into the new one: charge both, then
            // give the old one back.
            std::size_t old = v_->capacity();
            std::size_t cap = std::min(std::max(need, old * 2), max_size_);
            if (!holder_->budget.charge(*holder_, cap))
                throw std::length_error("over the message memory budget");
            v_->reserve(cap);
            holder_->budget.give_back(*holder_, old);
        }
        v_->resize(need);
    }
    void shrink(std::size_t n) noexcept { v_->resize(v_->size() - std::min(n, v_->size())); }
    void consume(std::size_t n) {
        v_->erase(v_->begin(), v_->begin() + static_cast<std::ptrdiff_t>(std::min(n, v_->size())));
    }

  private:
    std::vector<char>* v_;
    message_budget::holder* holder_;
    std::size_t max_size_;
};

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
    // Room for two messages of the largest size in flight: a client sending one whole while
    // another takes its echo.
    message_budget budget{2 * max_message_size};
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
    message_budget::holder share(limits.budget, pipe);
    for (;;) {
        // The idle timeout runs until a whole message is in: a peer that trickles one (or
        // claims a length it never sends) is dropped like a silent one.
        limits.reading.watch(entry);
        auto [read_ec, n] = co_await pipe.async_read_message(
            budgeted_buffer(message, share, limits.max_message_size), as_tuple);
        if (share.dropped)
            co_return;  // the budget said why
        if (read_ec)
            co_return report_read_error(pipe, read_ec, limits);
        limits.writing.watch(entry);
        auto [write_ec, written] =
            co_await pipe.async_write_message(::asio::buffer(message), as_tuple);
        if (write_ec)
            co_return report_write_error(pipe, write_ec);
        message.clear();
        message.shrink_to_fit();  // an idle client keeps no buffer
        limits.budget.release(share);
    }
}

// Accepts until the server stops; `fatal` gets the error that ends serving (the name taken
// over), after which the acceptor is closed and the io_context stopped.
::asio::awaitable<void> accept_clients(npipe::asio::named_pipe_acceptor& acceptor, bool message,
                                       echo_limits& limits, std::error_code& fatal,
                                       ::asio::io_context& io) {
    auto ex = co_await ::asio::this_coro::executor;
    ::asio::steady_timer pause(ex);
    bool out_of_fds = false;
    for (;;) {
        auto [ec, pipe] = co_await acceptor.async_accept(as_tuple);
        if (ec == ::asio::error::operation_aborted || ec == ::asio::error::bad_descriptor)
            co_return;  // stopping
        if (ec == npipe::errc::name_taken_over) {
            // Another server (a .NET one without FirstPipeInstance) removed our socket file and
            // bound its own: no new client can reach us, so serving on would be a silent lie.
            fatal = ec;
            acceptor.close();  // leaves the other server's file alone
            io.stop();         // the clients' pipes are closed as their coroutines are destroyed
            co_return;
        }
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
#ifndef _WIN32
    raise_fd_limit(max_instances);
#endif
    ::asio::io_context io(1);
    // A stop signal that comes once the socket exists but before the signal_set below catches
    // it waits (blocked) and is handled then: the server stops cleanly and removes its socket.
    stop_signals_held hold;
    npipe::asio::named_pipe_acceptor acceptor(
        io, name, pipe_direction::in_out, max_instances,
        message ? transmission_mode::message : transmission_mode::byte, options);
#ifdef _WIN32
    ::asio::signal_set signals(io, SIGINT, SIGTERM, SIGBREAK);
#else
    ::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
#endif
    hold.release();
    signals.async_wait([&](std::error_code ec, int) {
        if (ec)
            return;
        acceptor.close();  // removes the socket file
        io.stop();         // the clients' pipes are closed as their coroutines are destroyed
    });
    // Declared after the io_context: destroyed before the client coroutines it may still hold.
    echo_limits limits(io.get_executor(), timeouts, options.max_message_size);
    std::error_code fatal;
    ::asio::co_spawn(io, accept_clients(acceptor, message, limits, fatal, io), ::asio::detached);
    io.run();
    if (fatal)
        throw pipe_error(fatal, name, "wait for connection");
}

}  // namespace npipe::cli
