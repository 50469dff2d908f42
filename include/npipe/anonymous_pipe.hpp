// npipe/anonymous_pipe.hpp: anonymous pipes for handing a pipe to a child process (.NET's
// AnonymousPipeServerStream and AnonymousPipeClientStream).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "npipe/options.hpp"
#include "npipe/pipe_stream.hpp"

namespace npipe {

/// The parent's end of an anonymous pipe (a kernel pipe, pipe2()). The parent keeps one end and
/// hands the other, the client end, to a child process: the child receives the descriptor under
/// the same number and its number as a string (get_client_handle_as_string()) on its command line.
///
/// Behaves as .NET on Linux, with its defect fixed: both ends are created close-on-exec and only
/// the client end is made inheritable, so the child never holds the parent's end and always sees
/// end of stream once the parent has disposed of its copy of the client end and closed its own.
/// (Mono 6.8 leaves both ends inheritable, so its children never see end of stream.) Starting the
/// child with npipe::spawn also keeps every other descriptor, including the inheritable client
/// ends of other anonymous pipes, out of the child.
///
/// Errors are pipe_error with an empty pipe_name(), the operation naming the handle.
class anonymous_pipe_server : public pipe_stream {
  public:
    /// direction is this end's: `out` (the default) keeps the write end and gives the child the
    /// read end; `in` is the reverse. `in_out` fails with errc::not_supported (a kernel pipe
    /// flows one way). With handle_inheritability::inheritable the client end's close-on-exec
    /// flag is cleared so any exec'd child inherits it; npipe::spawn passes the descriptors it is
    /// given either way. buffer_size > 0 asks the kernel for that pipe capacity (F_SETPIPE_SZ;
    /// rounded up to a power-of-two number of pages); beyond the unprivileged limit
    /// (/proc/sys/fs/pipe-max-size) it gets that limit, so buffer_size() says what was granted.
    /// Sizes above INT_MAX fail with errc::invalid_argument.
    explicit anonymous_pipe_server(
        pipe_direction direction = pipe_direction::out,
        handle_inheritability inheritability = handle_inheritability::none,
        std::size_t buffer_size = 0);

    /// The client end's descriptor number in decimal, for the child's command line. Throws
    /// errc::not_connected once the local copy has been disposed of or handed over.
    std::string get_client_handle_as_string() const;

    /// The client end's descriptor (still owned by this server), or -1 once disposed of.
    native_handle_type client_handle() const noexcept;

    /// Closes this process's copy of the client end. Call it once the child has been started:
    /// until then, the child cannot see end of stream (direction in) and the parent's writes do not
    /// fail when the child goes away (direction out). Idempotent; close() does it too.
    void dispose_local_copy_of_client_handle() noexcept;

    /// Gives up ownership of the client end and returns it (-1 when already disposed of); the
    /// caller must close it. An anonymous_pipe_client built in this process from the handle string
    /// does this itself.
    native_handle_type release_client_handle() noexcept;

    /// The pipe's capacity in bytes as the kernel reports it (F_GETPIPE_SZ); 0 once closed.
    std::size_t buffer_size() const noexcept;
};

/// The child's end of an anonymous pipe: adopts an inherited descriptor given by its number.
/// The descriptor may be a pipe (FIFO) or a socket, as in .NET; anything else is refused. The
/// client owns the descriptor from then on (it is closed with the client) and marks it
/// close-on-exec, so the child's own children do not hold the pipe open.
class anonymous_pipe_client : public pipe_stream {
  public:
    /// handle_string: the decimal descriptor number (get_client_handle_as_string()), digits
    /// only. direction must be `in` or `out` (errc::not_supported for `in_out`); for a FIFO it
    /// must match how the descriptor was opened (errc::wrong_direction otherwise). A malformed
    /// number, a closed descriptor, or one that is neither a FIFO nor a socket fails with
    /// errc::invalid_argument and a message naming the handle and the cause; nothing is closed
    /// then. When the descriptor is the client end of an anonymous_pipe_server in this process,
    /// that server hands it over (its local copy counts as disposed of), so it is never closed
    /// twice.
    anonymous_pipe_client(pipe_direction direction, std::string_view handle_string);
    /// The same for a C string (argv[1], typically): without it, a `char*` would pick the
    /// constructor below on Windows, where a handle is a pointer.
    anonymous_pipe_client(pipe_direction direction, const char* handle_string)
        : anonymous_pipe_client(direction, std::string_view(handle_string)) {}

    /// As above with the descriptor itself, which the client adopts.
    anonymous_pipe_client(pipe_direction direction, native_handle_type handle);
};

}  // namespace npipe
