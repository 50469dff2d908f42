// The state behind every pipe_stream. Shared (std::shared_ptr) so that a thread blocked in a
// wait keeps it alive while another thread closes or destroys the pipe object.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "core/platform.hpp"
#include "core/transport.hpp"
#include "framing/message_channel.hpp"
#include "npipe/options.hpp"

namespace npipe::detail {

struct pipe_state {
    pipe_state(std::string name, pipe_direction direction);
    virtual ~pipe_state();
    pipe_state(const pipe_state&) = delete;
    pipe_state& operator=(const pipe_state&) = delete;

    std::string name;
    std::atomic<pipe_direction> direction;  ///< atomic: shutdown_write() may race a read
    /// The connection (or pipe end); empty when not connected. Shared with `messages`.
    std::shared_ptr<transport> conn;
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

    /// Takes a new connection: the direction this end does not use is shut down (as .NET does),
    /// and message pipes get their framing. Fails only when out of memory (the connection is
    /// dropped then).
    void attach(std::shared_ptr<transport> connection, std::error_code& ec) noexcept;

    /// Message pipes: sets up `messages` over `conn`, polling before reads block (`spin`) unless
    /// the peer is confined to the one CPU this thread is confined to. Fails only when out of
    /// memory.
    void attach_message_channel(std::size_t max_message_size, std::error_code& ec) noexcept;
    std::size_t max_message_size = pipe_options::default_max_message_size;

    /// Drops the connection; `end_for_everyone` ends it first (socket shutdown), so a reader
    /// blocked in another thread wakes and copies held by child processes end too.
    void drop_connection(bool end_for_everyone = true) noexcept;
    /// Marks the pipe closed, wakes every wait on it and ends the connection (the handle stays
    /// allocated until destruction where the transport allows, see pipe_stream::close).
    /// Thread-safe.
    void close() noexcept;

    /// Blocks until `handle` is readable, the pipe is closed, or the deadline passes.
    /// Returns an empty code when readable, operation_aborted or timed_out otherwise.
    /// An invalid handle waits for close() or the deadline only.
    std::error_code wait_readable(platform::handle handle,
                                  std::optional<std::chrono::steady_clock::time_point> deadline);

    /// Sleeps until the deadline or close(), whichever comes first; true when closed.
    bool sleep_until(std::chrono::steady_clock::time_point until);

    /// Hook for subclasses: release what close() should release (server instances, ...).
    virtual void on_close() noexcept {}

  private:
    platform::wake_event wake_;  ///< signalled by close(); waited on beside every blocking wait
};

/// Throws pipe_error naming the pipe and the operation.
[[noreturn]] void throw_error(const std::error_code& ec, const std::string& pipe_name,
                              std::string_view operation);

/// Throws pipe_error naming the pipe and the operation when ec is set. Inline: it sits on
/// every read and write, and the throw is the rare path.
inline void throw_if(const std::error_code& ec, const std::string& pipe_name,
                     std::string_view operation) {
    if (ec) [[unlikely]]
        throw_error(ec, pipe_name, operation);
}

}  // namespace npipe::detail
