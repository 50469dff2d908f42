// npipe/pipe_stream.hpp: the stream every pipe end is (.NET's PipeStream).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/options.hpp"

namespace npipe {

namespace detail {
struct pipe_state;
}

/// Who is on the other end of a local pipe, as the kernel reports it (SO_PEERCRED).
/// .NET exposes only the user name; npipe also gives the group and the process id.
struct peer_credentials {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    pid_t pid = 0;
};

/// One end of a pipe: the base of named_pipe_server, named_pipe_client and the anonymous pipe
/// ends. Reads and writes block; the throwing calls throw npipe::pipe_error, the overloads taking
/// std::error_code& never throw. A pipe_stream is movable, not copyable.
class pipe_stream {
  public:
    using native_handle_type = int;

    pipe_stream(pipe_stream&&) noexcept;
    pipe_stream& operator=(pipe_stream&&) noexcept;
    pipe_stream(const pipe_stream&) = delete;
    pipe_stream& operator=(const pipe_stream&) = delete;
    virtual ~pipe_stream();

    /// Reads up to buffer.size() bytes, blocking until at least one is available.
    /// Returns 0 at end of stream (the peer closed or shut down its write side).
    std::size_t read(std::span<std::byte> buffer);
    std::size_t read(std::span<std::byte> buffer, std::error_code& ec) noexcept;

    /// Writes all of data or fails; a peer that has gone away gives errc::broken_pipe
    /// (never SIGPIPE), and every later write fails the same way.
    void write(std::span<const std::byte> data);
    void write(std::span<const std::byte> data, std::error_code& ec) noexcept;
    void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }

    /// Reads one byte: its value 0..255, or -1 at end of stream.
    int read_byte();
    /// Writes one byte.
    void write_byte(std::uint8_t value);

    /// Does nothing, as in .NET on Linux: writes go straight to the kernel.
    void flush() {}

    /// Ends our side of the data flow: the peer reads end of stream after the bytes already
    /// written, and can still send to us. (.NET has no equivalent; a close does both.)
    void shutdown_write();

    /// Whether this end was opened for reading / writing and is still open.
    bool can_read() const noexcept;
    bool can_write() const noexcept;

    /// Whether a peer is attached (a server that accepted, a client that connected).
    bool is_connected() const noexcept;

    /// The credentials of the connected peer; throws errc::not_connected without one, and
    /// errc::not_supported on an anonymous pipe.
    peer_credentials get_peer_credentials() const;

    /// Closes the pipe. Safe to call from another thread to wake a blocked
    /// wait_for_connection, connect or read, which then fail with errc::operation_aborted
    /// (read returns end of stream). Idempotent.
    void close() noexcept;

    /// The file descriptor of the connection (-1 when there is none). Still owned by the pipe.
    native_handle_type native_handle() const noexcept;

    /// The name this pipe was opened with, as given.
    const std::string& pipe_name() const noexcept;

  protected:
    explicit pipe_stream(std::shared_ptr<detail::pipe_state> state) noexcept;
    detail::pipe_state& state() const noexcept { return *state_; }
    const std::shared_ptr<detail::pipe_state>& shared_state() const noexcept { return state_; }

  private:
    std::shared_ptr<detail::pipe_state> state_;
};

}  // namespace npipe
