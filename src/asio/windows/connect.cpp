// npipe::asio's client on Windows: connect attempts that never block the executor (no
// WaitNamedPipeW: async_connect's backoff timer paces a busy or absent pipe). Remote pipes need
// npipe::remote, which is not built for Windows.
#include "core/named_pipe_rules.hpp"
#include "core/platform.hpp"
#include "core/remote_hook.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "platform/windows/pipe_client.hpp"

namespace npipe::asio {
namespace detail {

struct remote_wait {};

bool is_remote(const pipe_impl& impl) noexcept {
    return npipe::detail::is_remote_path(impl.path);
}

std::shared_ptr<remote_wait> start_remote_attempt(
    const std::shared_ptr<pipe_impl>&, std::optional<std::chrono::steady_clock::time_point>,
    std::error_code& ec) {
    ec = npipe::errc::not_supported;  // npipe::remote is not built for Windows
    return nullptr;
}

remote_answer take_remote_answer(pipe_impl&, remote_wait&, bool, std::error_code&) noexcept {
    return remote_answer::abandoned;  // never started (start_remote_attempt fails)
}

pipe_impl::attempt pipe_impl::try_connect(std::error_code& ec) noexcept {
    npipe::detail::platform::connect_status status;
    auto connection = npipe::detail::win::open_client(path, false, status, ec);
    if (status == npipe::detail::platform::connect_status::retry)
        return attempt::retry;
    if (!connection)
        return attempt::failed;
    // current_user_only: the server's owner must be our user, as connect_local checks it.
    pipe_options check;
    check.current_user_only = options.current_user_only;
    if (!npipe::detail::admit_peer(*connection, check)) {
        connection->close();
        ec = npipe::errc::access_denied;
        return attempt::failed;
    }
    bool message = connection->native_message_pipe();
    adopt(std::move(connection),
          message ? npipe::transmission_mode::message : npipe::transmission_mode::byte, ec);
    if (ec)
        return attempt::failed;
    read_mode = npipe::transmission_mode::byte;  // as on Windows: clients opt in
    return attempt::connected;
}

}  // namespace detail

}  // namespace npipe::asio
