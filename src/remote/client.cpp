// The client side of remote pipes: the connectors npipe::named_pipe_client and
// npipe::asio::named_pipe_client call for another machine's name. Both run an attempt
// (attempt.hpp) that hands the pipe one end of a local socket pair whose other end a pump
// forwards to the TLS connection, so the pipe's read/write path stays the local one: the
// synchronous client on a relay thread it owns, the asynchronous one on its own executor.

#include <condition_variable>
#include <mutex>
#include <thread>

#include "asio/remote_hook.hpp"
#include "core/remote_hook.hpp"
#include "npipe/errors.hpp"
#include "npipe/remote_options.hpp"
#include "platform/posix/local_socket.hpp"
#include "remote/attempt.hpp"
#include "transport/unix_socket/socket_transport.hpp"

namespace npipe {
namespace detail::remote {
namespace {

using clock = std::chrono::steady_clock;
using deadline_t = std::optional<clock::time_point>;

// One remote pipe's relay: the io_context in which the attempt (attempt.hpp) runs on the
// connecting thread and, once connected, the pump forwards on a thread of its own. Owned by
// the pipe: close() winds it down and joins the thread, so a closed pipe leaves neither thread
// nor descriptor behind.
class relay {
  public:
    // How long close() lets the relay deliver what the pipe wrote before it closed (the
    // gateway may be slow to read) before cutting it off, as SO_LINGER would.
    static constexpr auto linger = std::chrono::seconds(5);

    ~relay() { close(); }

    // Connects on the calling thread; on success the forwarding goes on in our thread.
    attempt_result connect(std::string_view server, std::string_view name,
                           const remote_options& options, deadline_t deadline) {
        std::optional<attempt_result> result;
        // A plain pointer: the pump lives in our io_context, a shared_ptr would be a cycle.
        start_attempt(
            io_.get_executor(), server, name, options, deadline,
            [this](std::error_code e) { set(e); },
            [&](attempt_result r) { result = std::move(r); });
        while (!result && io_.run_one() != 0) {
        }
        if (!result) {
            result.emplace();
            result->ec = errc::operation_aborted;
        }
        if (result->ec)
            return std::move(*result);
        try {
            thread_ = std::thread([this] {
                io_.run();
                std::lock_guard lock(mutex_);
                done_ = true;
                finished_.notify_all();
            });
        } catch (const std::system_error& e) {
            result->ec = e.code();
            result->fd.reset();
        }
        return std::move(*result);
    }

    /// The error that ended the relayed connection (a dead network: timed_out), or none.
    std::error_code failure() const noexcept {
        std::lock_guard lock(mutex_);
        return failure_;
    }

    /// Ends the relay once the pipe's end of the connection is shut down: it first lets the
    /// relay deliver what was written (bounded, as SO_LINGER), then stops it and releases its
    /// thread, descriptors and TLS state. Idempotent.
    void close() noexcept {
        std::call_once(close_once_, [this] {
            if (!thread_.joinable())
                return;
            {
                std::unique_lock lock(mutex_);
                finished_.wait_for(lock, linger, [this] { return done_; });
            }
            io_.stop();  // what is still pending dies with io_ (the pump, its sockets, SSL)
            thread_.join();
        });
    }

  private:
    void set(std::error_code ec) noexcept {
        std::lock_guard lock(mutex_);
        failure_ = ec;
    }

    ::asio::io_context io_{1};
    std::thread thread_;
    mutable std::mutex mutex_;
    std::condition_variable finished_;
    bool done_ = false;
    std::error_code failure_;
    std::once_flag close_once_;
};

// The remote transport: the pipe's end of the local socket pair whose other end is relayed to
// the gateway, plus what the relay knows: why it ended (a dead network reads as that error, not
// as the peer's close) and, for the synchronous client, the relay itself, wound down when the
// pipe ends its side.
class relayed_transport final : public transport {
  public:
    relayed_transport(unique_fd fd, bool message, std::function<std::error_code()> failure,
                      std::shared_ptr<relay> link)
        : inner_(fd.release(), message), failure_(std::move(failure)), link_(std::move(link)) {}
    ~relayed_transport() override { close(); }

    bool keeps_boundaries() const noexcept override { return inner_.keeps_boundaries(); }
    std::size_t max_send_size() const noexcept override { return inner_.max_send_size(); }
    std::size_t receive_size() const noexcept override { return inner_.receive_size(); }
    std::size_t receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                        std::error_code& ec) noexcept override {
        return inner_.receive(buffer, spin, ec);
    }
    std::size_t send(std::span<const std::span<const std::byte>> pieces,
                     std::error_code& ec) noexcept override {
        return inner_.send(pieces, ec);
    }
    bool shutdown(shutdown_how how, std::error_code& ec) noexcept override {
        return inner_.shutdown(how, ec);
    }
    void end() noexcept override {
        // The relay must see our end go before it can finish.
        inner_.end();
        if (link_)
            link_->close();
    }
    void close() noexcept override {
        end();
        inner_.close();
    }
    peer_credentials peer(std::error_code& ec) const noexcept override {
        ec = errc::not_supported;  // the peer is another machine's: the gateway vouches for it
        return {};
    }
    std::error_code end_of_stream_error() const noexcept override {
        return failure_ ? failure_() : std::error_code();
    }
    pipe_stream::native_handle_type native_handle() const noexcept override {
        return inner_.native_handle();
    }

  private:
    socket_transport inner_;
    std::function<std::error_code()> failure_;
    std::shared_ptr<relay> link_;
};

std::shared_ptr<transport> make_relayed(attempt_result& r, const pipe_options& options,
                                        std::function<std::error_code()> failure,
                                        std::shared_ptr<relay> link) {
    set_buffer_sizes(r.fd.get(), options.in_buffer_size, options.out_buffer_size);
    return std::make_shared<relayed_transport>(std::move(r.fd), r.message, std::move(failure),
                                               std::move(link));
}

remote_connection connect_remote(std::string_view server, std::string_view name, pipe_direction,
                                 const pipe_options& options, deadline_t deadline,
                                 std::error_code& ec, std::string& why) {
    static const remote_options defaults;
    auto link = std::make_shared<relay>();
    auto r = link->connect(server, name, options.remote ? *options.remote : defaults, deadline);
    remote_connection out;
    ec = r.ec;
    why = std::move(r.why);
    out.retry = r.retry;
    if (ec)
        return out;
    out.message = r.message;
    auto failure = [link] { return link->failure(); };
    out.connection = make_relayed(r, options, std::move(failure), std::move(link));
    return out;
}

// npipe::asio's remote connect: one attempt on the pipe's executor; its outcome goes into
// `wait` and `wake` tells the waiting async_connect.
void async_connect_remote(const ::asio::any_io_executor& ex, std::string_view server,
                          std::string_view name, const pipe_options& options, deadline_t deadline,
                          std::shared_ptr<npipe::asio::detail::remote_wait> wait,
                          std::function<void()> wake) {
    static const remote_options defaults;
    // Recorded by the pump before it closes its end of the pair, so a read that then sees end
    // of stream finds it; an io_context may run the two on different threads, hence the lock.
    struct failure_record {
        std::mutex mutex;
        std::error_code ec;
    };
    auto failure = std::make_shared<failure_record>();
    auto on_end = [failure](std::error_code ec) {
        std::lock_guard lock(failure->mutex);
        failure->ec = ec;
    };
    auto done = [wait, failure, options, wake = std::move(wake)](attempt_result r) {
        if (wait->abandoned)
            return;  // r.fd closes itself
        wait->outcome.ec = r.ec;
        wait->outcome.message = r.message;
        wait->outcome.retry = r.retry;
        if (!r.ec) {
            try {
                wait->outcome.connection = make_relayed(
                    r, options,
                    [failure] {
                        std::lock_guard lock(failure->mutex);
                        return failure->ec;
                    },
                    nullptr);
            } catch (const std::bad_alloc&) {
                wait->outcome.ec = std::make_error_code(std::errc::not_enough_memory);
            }
        }
        wait->ready = true;
        wake();
    };
    auto a = start_attempt(ex, server, name, options.remote ? *options.remote : defaults, deadline,
                           std::move(on_end), std::move(done));
    // Weak: the attempt owns `wait` (through done) until it finishes.
    wait->cancel = [weak = std::weak_ptr<attempt>(a)] {
        if (auto p = weak.lock())
            p->cancel();
    };
}

}  // namespace
}  // namespace detail::remote

void enable_remote_pipes() noexcept {
    detail::set_remote_connector(&detail::remote::connect_remote);
    asio::detail::set_remote_connector(&detail::remote::async_connect_remote);
}

remote_options::remote_options() {
    enable_remote_pipes();
}

namespace {
// Linked in (any use of npipe::remote's client pulls this file): remote names just work.
[[maybe_unused]] const bool registered = (enable_remote_pipes(), true);
}  // namespace

}  // namespace npipe
