// npipe/asio/detail/acceptor_impl.hpp: the state behind named_pipe_acceptor, shared with its
// pending operations (see pipe_impl.hpp for why). Not part of the public API.
#pragma once

#ifdef _WIN32
// Windows: a proactor over overlapped pipe handles (npipe/asio/detail/windows/).
#include "npipe/asio/detail/windows/acceptor_impl.hpp"
#else

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/asio/detail/pipe_impl.hpp"
#include "npipe/options.hpp"

namespace npipe::detail::platform {
class listener;
}

namespace npipe::asio::detail {

struct acceptor_impl {
    explicit acceptor_impl(const ::asio::any_io_executor& ex);
    ~acceptor_impl();
    acceptor_impl(const acceptor_impl&) = delete;
    acceptor_impl& operator=(const acceptor_impl&) = delete;

    /// Creates the listening socket at the name's path with the synchronous server's
    /// never-hijack logic. Throws npipe::pipe_error as named_pipe_server's constructor does.
    void open(std::string_view name, pipe_direction direction, int max_instances,
              npipe::transmission_mode mode, const pipe_options& options);

    /// Closes the listening socket and removes the socket file (if it is still ours); pending
    /// accepts complete with operation_aborted. Accepted pipes are not affected. Idempotent.
    void close() noexcept;
    /// Cancels the pending accepts; the acceptor stays usable.
    void cancel() noexcept;

    /// Whether the socket file was removed or replaced since we bound it (a .NET server without
    /// FirstPipeInstance takes a live server's name so): no client can reach us any more.
    /// Consumes the watch's events, so a wait that the watch woke waits again.
    bool taken_over() noexcept;

    /// Takes a slot of the max_instances quota; false when all are in use. Always true
    /// without a limit.
    bool try_acquire_slot() noexcept;
    /// Gives back a slot taken by try_acquire_slot() that was not handed to a pipe.
    void release_slot() noexcept;
    /// Consumes the wake-ups of slots given back (after `wake` became readable).
    void drain_wake() noexcept;

    /// Accepts one queued client (non-blocking), applying current_user_only and accept_peer (a
    /// refused client is dropped and the next one taken) and the buffer sizes. Returns the
    /// connection, or null with ec set (EAGAIN when nobody is queued; std::errc::interrupted
    /// after a bounded number of refusals: call again after other handlers have had a turn).
    std::shared_ptr<npipe::detail::transport> try_accept(std::error_code& ec) noexcept;

    /// Builds the state of an accepted pipe on `ex`, handing it the slot taken for it.
    std::shared_ptr<pipe_impl> make_pipe(const ::asio::any_io_executor& ex,
                                         std::shared_ptr<npipe::detail::transport> connection,
                                         std::error_code& ec);

    /// The platform's listening endpoint (core/platform.hpp), shared with no one.
    std::unique_ptr<npipe::detail::platform::listener> endpoint;
    /// The endpoint's takeover watch (one for the acceptor, whatever the number of accepts).
    struct takeover_watch;
    std::unique_ptr<takeover_watch> takeover;
    /// Registered for waits only: readable when a client is queued or the takeover watch saw a
    /// change (the watch's handle, which holds the endpoint's).
    socket_type listener;
    socket_type wake;                     ///< readable when an accepted pipe gives its slot back
    std::shared_ptr<instance_pool> pool;  ///< null without a limit
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

#endif  // _WIN32
