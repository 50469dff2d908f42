// npipe/asio/detail/windows/acceptor_impl.hpp: the state behind named_pipe_acceptor on Windows
// (npipe/asio/detail/acceptor_impl.hpp selects this file). The listening is the synchronous
// server's (src/platform/windows): an overlapped ConnectNamedPipe on the instance that waits
// for a client, FILE_FLAG_FIRST_PIPE_INSTANCE on the first, a queue of connected instances
// (a socket's backlog) and an event set while it holds a client. The acceptor waits on that
// event through Asio, so the accept operation is the one Linux uses (accept_op). Not part of
// the public API.
#pragma once

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/asio/detail/windows/pipe_impl.hpp"
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

    /// Creates the pipe's first instance with the synchronous server's rules (no-hijack,
    /// current_user_only's security descriptor, POSIX-only options refused). Throws
    /// npipe::pipe_error as named_pipe_server's constructor does.
    void open(std::string_view name, pipe_direction direction, int max_instances,
              npipe::transmission_mode mode, const pipe_options& options);

    /// Closes every instance that has no accepted pipe: pending accepts complete with
    /// operation_aborted, queued clients see the pipe end. Accepted pipes are not affected.
    /// Idempotent.
    void close() noexcept;
    /// Cancels the pending accepts; the acceptor stays usable.
    void cancel() noexcept;

    /// The system holds the name while an instance exists: it cannot be taken over.
    bool taken_over() noexcept { return false; }

    /// The max_instances quota, as on Linux.
    bool try_acquire_slot() noexcept;
    void release_slot() noexcept;
    void drain_wake() noexcept;

    /// Takes one connected client from the queue, applying current_user_only and accept_peer
    /// (a refused client is dropped and the next one taken). Returns the connection, or null
    /// with ec set (would_block() when nobody is queued; std::errc::interrupted after a
    /// bounded number of refusals).
    std::shared_ptr<npipe::detail::transport> try_accept(std::error_code& ec) noexcept;

    /// Builds the state of an accepted pipe on `ex`, handing it the slot taken for it.
    std::shared_ptr<pipe_impl> make_pipe(const ::asio::any_io_executor& ex,
                                         std::shared_ptr<npipe::detail::transport> connection,
                                         std::error_code& ec);

    /// The platform's listener (core/platform.hpp).
    std::unique_ptr<npipe::detail::platform::listener> endpoint;
    waitable_handle listener;             ///< signalled while a connected client is queued
    waitable_handle wake;                 ///< signalled when an accepted pipe gives its slot back
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
