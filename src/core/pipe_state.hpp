// The state behind every pipe_stream. Shared (std::shared_ptr) so that a thread blocked in a
// wait keeps it alive while another thread closes or destroys the pipe object.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "framing/message_channel.hpp"
#include "npipe/options.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::detail {

/// Sockets are written with MSG_NOSIGNAL; pipes (FIFOs) need SIGPIPE blocked around write().
enum class fd_kind { socket, pipe };

struct pipe_state {
    pipe_state(std::string name, pipe_direction direction, fd_kind kind);
    virtual ~pipe_state();
    pipe_state(const pipe_state&) = delete;
    pipe_state& operator=(const pipe_state&) = delete;

    std::string name;
    std::atomic<pipe_direction> direction;  ///< atomic: shutdown_write() may race a read
    fd_kind kind;
    unique_fd conn;                   ///< the connection (or pipe end); empty when not connected
    std::atomic<bool> broken{false};  ///< a write hit EPIPE: every later write fails at once
    std::atomic<bool> closed{false};  ///< close() was called: waits end with operation_aborted
    bool eof = false;                 ///< a byte-pipe read returned 0 (message pipes: `messages`)

    /// The pipe's type. A client learns it when it connects (transmission_known until then).
    npipe::transmission_mode transmission = npipe::transmission_mode::byte;
    bool transmission_known = true;
    std::atomic<npipe::transmission_mode> read_mode{npipe::transmission_mode::byte};
    /// Message pipes, once connected: the framing over the connection. Kept after a disconnect
    /// or close (a thread woken inside a read must not find it destroyed); replaced at the next
    /// connection.
    std::unique_ptr<message_channel> messages;

    /// From pipe_options: coalesce written messages; poll this long before a read blocks (0
    /// with one CPU online). Set by tune(), before any connection.
    bool coalesce_messages = false;
    std::chrono::nanoseconds spin{0};

    /// Takes the performance options (coalesce_messages, spin_before_block) from `options`.
    void tune(const pipe_options& options) noexcept;

    /// Message pipes: sets up `messages` over the connection in `conn` (a SOCK_SEQPACKET
    /// socket), polling before reads block (`spin`) unless the peer is confined to the one CPU
    /// this thread is confined to. Fails only when out of memory.
    void attach_message_channel(std::size_t max_message_size, std::error_code& ec) noexcept;

    /// Drops the connection; `end_for_everyone` shuts the socket down first, so a reader
    /// blocked in another thread wakes and copies held by child processes end too.
    void drop_connection(bool end_for_everyone = true) noexcept;
    /// Marks the pipe closed, wakes every wait on it and shuts the connection down (the
    /// descriptor stays allocated until destruction, see pipe_stream::close). Thread-safe.
    void close() noexcept;

    /// Blocks until `fd` is readable, the pipe is closed, or the deadline passes.
    /// Returns an empty code when readable, operation_aborted or timed_out otherwise.
    std::error_code wait_readable(int fd,
                                  std::optional<std::chrono::steady_clock::time_point> deadline);

    /// Sleeps until the deadline or close(), whichever comes first; true when closed.
    bool sleep_until(std::chrono::steady_clock::time_point until);

    /// Hook for subclasses: release what close() should release (server instances, ...).
    virtual void on_close() noexcept {}

    /// Hook for subclasses whose connection is relayed (remote pipes): why the stream ended, when
    /// it ended in an error the relay saw (a dead network) rather than the peer's close.
    /// Consulted only at end of stream.
    virtual std::error_code end_of_stream_error() const noexcept { return {}; }

  private:
    unique_fd wake_;  ///< eventfd signalled by close(); polled beside every blocking wait
};

/// Maps an errno to the npipe error a user branches on, or a system_category code.
std::error_code errno_code(int error) noexcept;

/// One read: bytes read, 0 at end of stream. EINTR is retried.
std::size_t read_some(int fd, std::span<std::byte> buffer, std::error_code& ec) noexcept;

/// read_some, after polling with non-blocking reads for up to `spin` (a socket only).
std::size_t read_some_spinning(int fd, std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                               std::error_code& ec) noexcept;

/// Writes everything, retrying short writes and EINTR; never raises SIGPIPE.
void write_all(int fd, fd_kind kind, std::span<const std::byte> data, std::error_code& ec) noexcept;

/// Throws pipe_error naming the pipe and the operation when ec is set.
void throw_if(const std::error_code& ec, const std::string& pipe_name, std::string_view operation);

}  // namespace npipe::detail
