// npipe/named_pipe_server.hpp: the server end of a named pipe (.NET's NamedPipeServerStream).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>

#include "npipe/options.hpp"
#include "npipe/pipe_stream.hpp"

namespace npipe {

/// One server instance of a named pipe. The constructor creates the listening socket at the
/// name's path (see pipe_path()), so clients can connect (and queue) from then on;
/// wait_for_connection() accepts the next client into this instance.
///
/// Unlike .NET on Linux, a name served by a live server is never taken over: a server in another
/// process, or beyond max_instances in this one, fails with errc::name_in_use or
/// errc::all_instances_busy. All instances of a name live in the process that created the first
/// one and share its listening socket. A stale socket file left by a crashed server is replaced;
/// a file that is not a socket is never deleted (errc::not_a_socket).
class named_pipe_server : public pipe_stream {
  public:
    /// max_instances: 1..254, or max_allowed_server_instances for no limit; the first instance's
    /// value is the limit for the name. Throws pipe_error (invalid_name, path_too_long,
    /// name_in_use, all_instances_busy, not_a_socket, access_denied, invalid_argument); its
    /// message says why when the path is unsafe: a directory on it that another user owns or
    /// may write without the sticky bit, a symbolic link at the path, or another user's socket
    /// there (never removed). See docs/security.md.
    explicit named_pipe_server(std::string_view name,
                               pipe_direction direction = pipe_direction::in_out,
                               int max_instances = 1, pipe_options options = {});

    /// As above, choosing the pipe's type. transmission_mode::byte is exactly the constructor
    /// above (.NET's wire). transmission_mode::message creates a message-mode pipe: every
    /// write() is one message, and this end starts in message read mode. Its clients must
    /// speak npipe's message protocol (docs/protocol.md): an npipe client discovers it by
    /// itself, a .NET byte-mode client is refused at connect. All instances of a name must have
    /// the same type (errc::invalid_argument otherwise).
    named_pipe_server(std::string_view name, pipe_direction direction, int max_instances,
                      npipe::transmission_mode transmission_mode, pipe_options options = {});

    /// Blocks until a client connects. A client refused by current_user_only or
    /// pipe_options::accept_peer is dropped before it can exchange a byte and the wait goes on.
    /// Out of descriptors (EMFILE/ENFILE), the wait neither fails nor spins: it pauses (5 ms,
    /// doubling up to 200 ms) with the client left queued, and accepts it once a descriptor is
    /// free. Throws errc::already_connected when connected, errc::operation_aborted when the
    /// server is closed from another thread.
    void wait_for_connection();
    void wait_for_connection(std::error_code& ec) noexcept;

    /// As above, failing with errc::timed_out when no client arrives in time.
    void wait_for_connection(std::chrono::milliseconds timeout);
    void wait_for_connection(std::chrono::milliseconds timeout, std::error_code& ec) noexcept;

    /// Closes the current connection; the instance can then wait for the next client. Not to
    /// be called while another thread reads or writes this pipe (as in .NET): close() is the
    /// call that wakes such a thread.
    void disconnect();

    /// Takes no more clients at this name, while this instance and its connection go on (as
    /// netcat's listener closes its socket once it has its client). The instance lets go of
    /// the name's listening socket, which is closed and its socket file removed once no other
    /// instance of the name in this process holds it: later clients find no server and wait
    /// for one until their connect times out (as for a busy pipe on Windows), instead of
    /// queueing where nobody will accept them. wait_for_connection() then fails with
    /// errc::operation_aborted. Not part of .NET's API.
    void stop_listening() noexcept;

    /// The connected client's user name ("" when the password database has none).
    std::string get_impersonation_user_name() const;

    /// The socket file this server listens on.
    const std::string& socket_path() const noexcept;
};

}  // namespace npipe
