// What npipe::asio's acceptor (src/asio/pipe_common.cpp) asks of each platform: how Asio waits
// on a handle the platform keeps, and which listener to create. Linux's are in acceptor.cpp,
// Windows' in windows/acceptor.cpp.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "core/platform.hpp"
#include "npipe/asio/detail/acceptor_impl.hpp"

namespace npipe::asio::detail {

/// Lets Asio wait on `h`, which the platform keeps owning, through `waiter`.
void watch(wait_object& waiter, npipe::detail::platform::handle h, std::error_code& ec);

/// Ends the waits on `waiter` (operation_aborted) and lets go of what it waits on; `h` given
/// to watch() stays the platform's. Idempotent.
void unwatch(wait_object& waiter) noexcept;

/// The platform's listener for an acceptor of `max_instances` (core/platform.hpp's listen;
/// on Windows the system counts the instances).
std::unique_ptr<npipe::detail::platform::listener> listen_endpoint(
    const std::string& path, npipe::transmission_mode mode, const pipe_options& options,
    int max_instances, std::error_code& ec, std::string& why);

}  // namespace npipe::asio::detail
