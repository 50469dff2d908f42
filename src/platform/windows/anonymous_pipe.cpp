// Anonymous pipes on Windows: CreatePipe ends handed to a child process by handle value, the
// handle string formatted as .NET's GetClientHandleAsString() does (the value in decimal).
#include "npipe/anonymous_pipe.hpp"

#include <windows.h>

#include <charconv>
#include <cstdint>

#include "core/owned_client_handle.hpp"
#include "core/pipe_state.hpp"
#include "npipe/errors.hpp"
#include "platform/windows/win_util.hpp"
#include "transport/windows_pipe/pipe_transport.hpp"

namespace npipe {
namespace detail {

using client_handle_of_server = owned_client_handle<win::unique_handle, HANDLE>;

struct anon_server_state : pipe_state {
    explicit anon_server_state(pipe_direction direction) : pipe_state("", direction) {}
    client_handle_of_server client;

    void on_close() noexcept override { client.dispose(); }
};

}  // namespace detail

namespace {

using detail::win::pipe_transport;
using detail::win::unique_handle;

[[noreturn]] void fail(std::error_code ec, const std::string& operation) {
    throw pipe_error(ec, "", operation);
}

std::string handle_operation(std::string_view handle) {
    return "open client handle '" + std::string(handle) + "'";
}

std::shared_ptr<detail::anon_server_state> make_server(pipe_direction direction,
                                                       handle_inheritability inheritability,
                                                       std::size_t buffer_size) {
    if (direction != pipe_direction::in && direction != pipe_direction::out)
        fail(errc::not_supported,
             "create anonymous pipe: direction must be in or out (an anonymous pipe flows one "
             "way)");
    if (buffer_size > MAXDWORD)
        fail(errc::invalid_argument, "create anonymous pipe: buffer size " +
                                         std::to_string(buffer_size) + " exceeds 4 GiB - 1");
    auto state = std::make_shared<detail::anon_server_state>(direction);
    HANDLE read_end = nullptr, write_end = nullptr;
    // Neither end inheritable: the client end is made so only on request, and npipe::spawn
    // passes exactly the handles it is given.
    if (!::CreatePipe(&read_end, &write_end, nullptr, static_cast<DWORD>(buffer_size)))
        fail(detail::win::last_error(), "create anonymous pipe");
    unique_handle reading(read_end), writing(write_end);
    bool server_writes = direction == pipe_direction::out;
    unique_handle client = server_writes ? std::move(reading) : std::move(writing);
    state->conn =
        std::make_shared<pipe_transport>(server_writes ? std::move(writing) : std::move(reading),
                                         pipe_transport::role::anonymous, false);
    if (inheritability == handle_inheritability::inheritable &&
        !::SetHandleInformation(client.get(), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT))
        fail(detail::win::last_error(),
             "create anonymous pipe: make the client handle inheritable");
    state->client.adopt(std::move(client));
    return state;
}

HANDLE parse_handle(std::string_view text) {
    std::uintptr_t value = 0;
    // Digits only, as .NET writes it: a handle string is always written by a program.
    bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!digits || error != std::errc{} || end != text.data() + text.size() || value == 0)
        fail(errc::invalid_argument, handle_operation(text) + ": not a decimal handle value");
    return reinterpret_cast<HANDLE>(value);
}

std::shared_ptr<detail::pipe_state> adopt(pipe_direction direction, HANDLE handle,
                                          const std::string& operation) {
    if (direction != pipe_direction::in && direction != pipe_direction::out)
        fail(errc::not_supported,
             operation + ": direction must be in or out (an anonymous pipe flows one way)");
    DWORD flags = 0;
    if (!handle || !::GetHandleInformation(handle, &flags))
        fail(errc::invalid_argument, operation + ": not an open handle");
    if (::GetFileType(handle) != FILE_TYPE_PIPE)
        fail(errc::invalid_argument, operation + ": not a pipe");
    auto state = std::make_shared<detail::pipe_state>("", direction);
    // A failure to allocate leaves the handle to the caller, as every failure above does.
    unique_handle owned(handle);
    try {
        state->conn = std::make_shared<pipe_transport>(std::move(owned),
                                                       pipe_transport::role::anonymous, false);
    } catch (...) {
        owned.release();
        throw;
    }
    // Ours from now on: a grandchild started by this process must not keep the pipe open.
    if (flags & HANDLE_FLAG_INHERIT)
        ::SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0);
    detail::client_handle_of_server::taken_over(handle);
    return state;
}

}  // namespace

anonymous_pipe_server::anonymous_pipe_server(pipe_direction direction,
                                             handle_inheritability inheritability,
                                             std::size_t buffer_size)
    : pipe_stream(make_server(direction, inheritability, buffer_size)) {}

std::string anonymous_pipe_server::get_client_handle_as_string() const {
    auto handle = client_handle();
    if (!handle)
        fail(errc::not_connected,
             "get client handle: the local copy of the client handle was disposed of");
    return std::to_string(reinterpret_cast<std::uintptr_t>(handle));
}

anonymous_pipe_server::native_handle_type anonymous_pipe_server::client_handle() const noexcept {
    return static_cast<detail::anon_server_state&>(state()).client.get(nullptr);
}

void anonymous_pipe_server::dispose_local_copy_of_client_handle() noexcept {
    static_cast<detail::anon_server_state&>(state()).client.dispose();
}

anonymous_pipe_server::native_handle_type anonymous_pipe_server::release_client_handle() noexcept {
    return static_cast<detail::anon_server_state&>(state()).client.release(nullptr);
}

std::size_t anonymous_pipe_server::buffer_size() const noexcept {
    DWORD out_size = 0, in_size = 0;
    auto h = native_handle();
    if (!h || !::GetNamedPipeInfo(h, nullptr, &out_size, &in_size, nullptr))
        return 0;
    return std::max(out_size, in_size);
}

anonymous_pipe_client::anonymous_pipe_client(pipe_direction direction,
                                             std::string_view handle_string)
    : pipe_stream(adopt(direction, parse_handle(handle_string), handle_operation(handle_string))) {}

anonymous_pipe_client::anonymous_pipe_client(pipe_direction direction, native_handle_type handle)
    : pipe_stream(
          adopt(direction, handle,
                handle_operation(std::to_string(reinterpret_cast<std::uintptr_t>(handle))))) {}

}  // namespace npipe
