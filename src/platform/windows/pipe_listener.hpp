// The Windows listener with the system's own instance limit, for npipe::asio's acceptor: its
// instances are created with nMaxInstances, so Windows counts them across processes (the
// synchronous named_pipe_server counts its instances in its process, through
// core/platform.hpp's listen).
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "core/platform.hpp"

namespace npipe::detail::win {

/// platform::listen (core/platform.hpp), every instance created with nMaxInstances
/// `max_instances` (1..254, or max_allowed_server_instances for PIPE_UNLIMITED_INSTANCES).
/// With every instance in use (accepted ones included) the listener opens none: clients see
/// ERROR_PIPE_BUSY, and accept() opens one again when it finds none, failing with
/// errc::all_instances_busy (status out_of_resources) while another process's instances of the
/// name hold the rest. With a limit of 1 each instance is the name's first (as .NET does): one
/// that finds the name taken by another server in the meantime fails with
/// errc::name_taken_over.
std::unique_ptr<platform::listener> listen(const std::string& endpoint, transmission_mode mode,
                                           const pipe_options& options, int max_instances,
                                           std::error_code& ec, std::string& why);

}  // namespace npipe::detail::win
