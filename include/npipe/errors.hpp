// npipe/errors.hpp: the npipe error category and the exception every pipe operation throws.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace npipe {

/// Conditions specific to pipes. Failures that are plain operating-system errors keep their
/// errno in std::system_category(); these are the ones a pipe user is expected to branch on.
enum class errc {
    timed_out = 1,       ///< a connect or wait did not complete within its timeout
    broken_pipe,         ///< the peer closed the pipe (or reset it) while we wrote or read
    access_denied,       ///< permission denied on the socket file, or a peer refused by policy
    name_in_use,         ///< a live server already serves this name (or first_pipe_instance)
    all_instances_busy,  ///< max_instances server instances already exist for this name
    invalid_name,        ///< the pipe name cannot be mapped to a socket path
    path_too_long,       ///< the socket path does not fit in sockaddr_un (107 bytes)
    not_a_socket,        ///< something that is not a socket sits at the pipe's path
    not_connected,       ///< the operation needs a connected pipe
    already_connected,   ///< connect / wait_for_connection on a pipe that is connected
    operation_aborted,   ///< the pipe was closed while the operation waited
    wrong_direction,     ///< read on an out-only pipe, or write on an in-only pipe
    invalid_argument,    ///< an argument is outside its documented range
    not_supported,       ///< the operation exists in the model but not on this pipe
    message_too_large,   ///< a message exceeds the pipe's maximum message size
    protocol_error,      ///< the peer speaks a different wire format (for example byte vs message)
    name_taken_over,     ///< the server's socket file was removed or replaced (a .NET server
                         ///< unlinks a live server's file and binds its own): no client can
                         ///< reach this server any more
};

/// The category of npipe::errc codes; its name() is "npipe".
const std::error_category& pipe_category() noexcept;

/// Makes an error_code in pipe_category(); found by ADL so `std::error_code ec = errc::x` works.
std::error_code make_error_code(errc e) noexcept;

/// The exception thrown by every throwing npipe call. what() reads
/// "pipe 'NAME': OPERATION: REASON", so a log line says which pipe failed and why
/// ("OPERATION: REASON" where there is no name: anonymous pipes, child processes).
class pipe_error : public std::system_error {
  public:
    pipe_error(std::error_code code, std::string_view pipe_name, std::string_view operation);

    /// The name the pipe was opened with ("" for anonymous pipes).
    const std::string& pipe_name() const noexcept { return pipe_name_; }

  private:
    std::string pipe_name_;
};

}  // namespace npipe

template <>
struct std::is_error_code_enum<npipe::errc> : std::true_type {};
