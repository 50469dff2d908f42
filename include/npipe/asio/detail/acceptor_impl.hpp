// npipe/asio/detail/acceptor_impl.hpp: the state behind named_pipe_acceptor, shared with its
// pending operations (see pipe_impl.hpp for why), on every platform: the listening is the
// synchronous server's (the platform's listener, core/platform.hpp), waited on through Asio (a
// reactor's socket on Linux, an event's object handle on Windows), so the accept operation is
// one (accept_op). Not part of the public API.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "npipe/asio/detail/pipe_impl.hpp"
#include "npipe/options.hpp"

namespace npipe::detail::platform {
class listener;
}

namespace npipe::asio::detail {

#ifdef _WIN32
/// What Asio waits on for the listener's and the quota's events.
using wait_object = waitable_handle;
#else
using wait_object = socket_type;
#endif

struct acceptor_impl {
    explicit acceptor_impl(const ::asio::any_io_executor& ex);
    ~acceptor_impl();
    acceptor_impl(const acceptor_impl&) = delete;
    acceptor_impl& operator=(const acceptor_impl&) = delete;

    /// Creates the listening endpoint with the synchronous server's rules (never take a live
    /// server's name; on Linux replace a crashed server's stale socket, the file's mode and
    /// group; on Windows current_user_only's security descriptor, POSIX-only options refused).
    /// On Windows the pipe's instances are created with max_instances, so the system counts
    /// them across processes. Throws npipe::pipe_error as named_pipe_server's constructor does.
    void open(std::string_view name, pipe_direction direction, int max_instances,
              npipe::transmission_mode mode, const pipe_options& options);

    /// Stops listening (Linux: closes the socket and removes its file if it is still ours;
    /// Windows: closes every instance that has no accepted pipe); pending accepts complete
    /// with operation_aborted. Accepted pipes are not affected. Idempotent.
    void close() noexcept;
    /// Cancels the pending accepts; the acceptor stays usable.
    void cancel() noexcept;

    /// Whether the socket file was removed or replaced since we bound it (a .NET server without
    /// FirstPipeInstance takes a live server's name so): no client can reach us any more.
    /// Consumes the watch's events, so a wait that the watch woke waits again. Always false on
    /// Windows, where the system holds the name while an instance exists.
    bool taken_over() noexcept;

    /// Takes a slot of the max_instances quota; false when all are in use. Always true
    /// without a limit.
    bool try_acquire_slot() noexcept;
    /// Gives back a slot taken by try_acquire_slot() that was not handed to a pipe.
    void release_slot() noexcept;
    /// Consumes the wake-ups of slots given back (after `wake` became readable).
    void drain_wake() noexcept;

    /// Accepts one queued client (non-blocking), applying current_user_only and accept_peer (a
    /// refused client is closed before a byte moves and the next one taken) and the buffer
    /// sizes. Returns the connection, or null with ec set: would_block(ec) when nobody is
    /// queued; std::errc::interrupted after a bounded number of refusals (call again after
    /// other handlers have had a turn); npipe::errc::all_instances_busy (Windows) when other
    /// processes' servers of the name hold every instance (pause, then call again).
    std::shared_ptr<npipe::detail::transport> try_accept(std::error_code& ec) noexcept;

    /// Starts a wait of `self` for the next look at a name whose instances are all busy in
    /// other processes: nothing signals when one is freed, so the looks are paced, 5 ms apart
    /// at first, then up to 200 ms (named_pipe_server's pause). Several accepts share the timer.
    template <class Self>
    void async_pause(Self&& self) {
        if (busy_timer.expiry() <= std::chrono::steady_clock::now()) {
            busy_pause = std::clamp(busy_pause * 2, std::chrono::milliseconds(5),
                                    std::chrono::milliseconds(200));
            busy_timer.expires_after(busy_pause);  // cancels waits it had not yet completed
        }
        busy_timer.async_wait(std::forward<Self>(self));
    }

    /// Builds the state of an accepted pipe on `ex`, handing it the slot taken for it.
    std::shared_ptr<pipe_impl> make_pipe(const ::asio::any_io_executor& ex,
                                         std::shared_ptr<npipe::detail::transport> connection,
                                         std::error_code& ec);

    /// The platform's listening endpoint (core/platform.hpp), shared with no one.
    std::unique_ptr<npipe::detail::platform::listener> endpoint;
    /// The endpoint's takeover watch (one for the acceptor, whatever the number of accepts).
    struct takeover_watch;
    std::unique_ptr<takeover_watch> takeover;
    /// Registered for waits only: signalled when a client is queued or the takeover watch saw a
    /// change (the watch's handle, which holds the endpoint's).
    wait_object listener;
    wait_object wake;                     ///< signalled when an accepted pipe gives its slot back
    std::shared_ptr<instance_pool> pool;  ///< null without a limit
    ::asio::steady_timer busy_timer;      ///< paces async_pause
    std::chrono::milliseconds busy_pause{0};
    std::string name;
    std::string path;
    pipe_direction direction = pipe_direction::in_out;
    npipe::transmission_mode mode = npipe::transmission_mode::byte;
    pipe_options options;
    int max_instances = max_allowed_server_instances;
    unsigned close_generation = 0;
    unsigned cancel_generation = 0;
};

}  // namespace npipe::asio::detail
