// The client side of remote pipes: the connectors npipe::named_pipe_client and
// npipe::asio::named_pipe_client call for another machine's name. Both run an attempt
// (attempt.hpp) that hands the pipe one end of a local socket pair whose other end a pump
// forwards to the TLS connection, so the pipe's read/write path stays the local one: the
// synchronous client on a relay thread it owns, the asynchronous one on its own executor.

#include <condition_variable>
#include <mutex>
#include <thread>

#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"
#include "npipe/remote_options.hpp"
#include "remote/attempt.hpp"
#include "remote/connector.hpp"

namespace npipe {
namespace detail::remote {
namespace {

using clock = std::chrono::steady_clock;
using deadline_t = std::optional<clock::time_point>;

// One remote pipe's relay: the io_context in which the attempt (attempt.hpp) runs on the
// connecting thread and, once connected, the pump forwards on a thread of its own. Owned by
// the pipe: close() winds it down and joins the thread, so a closed pipe leaves neither thread
// nor descriptor behind.
class relay final : public remote_link {
  public:
    // How long close() lets the relay deliver what the pipe wrote before it closed (the
    // gateway may be slow to read) before cutting it off, as SO_LINGER would.
    static constexpr auto linger = std::chrono::seconds(5);

    ~relay() override { close(); }

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

    std::error_code failure() const noexcept override {
        std::lock_guard lock(mutex_);
        return failure_;
    }

    void close() noexcept override {
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
    out.fd = std::move(r.fd);
    out.message = r.message;
    out.link = std::move(link);
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
    auto done = [wait, failure, wake = std::move(wake)](attempt_result r) {
        if (wait->abandoned)
            return;  // r.fd closes itself
        wait->outcome.ec = r.ec;
        wait->outcome.fd = r.fd.release();
        wait->outcome.message = r.message;
        wait->outcome.retry = r.retry;
        wait->outcome.relay_failure = [failure] {
            std::lock_guard lock(failure->mutex);
            return failure->ec;
        };
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
