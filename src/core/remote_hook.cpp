#include "core/remote_hook.hpp"

#include <atomic>

#include "core/platform.hpp"
#include "npipe/errors.hpp"

namespace npipe::detail {

namespace {
std::atomic<remote_connect_fn> registered_connector{nullptr};
}

void set_remote_connector(remote_connect_fn connector) noexcept {
    registered_connector.store(connector);
}

remote_connect_fn remote_connector() noexcept {
    return registered_connector.load();
}

bool is_local_server(std::string_view server) noexcept {
    return server == "." || server == "localhost" || server == platform::host_name();
}

std::string remote_path(std::string_view server, std::string_view name) {
    if (name.empty() || name.find('/') != std::string_view::npos || name.size() > 255)
        throw pipe_error(errc::invalid_name, name, "open a remote pipe");
    return "//" + std::string(server) + "/pipe/" + std::string(name);
}

bool is_remote_path(std::string_view path) noexcept {
    return path.size() > 2 && path[0] == '/' && path[1] == '/';
}

std::string_view remote_server(std::string_view path) noexcept {
    auto slash = path.find('/', 2);
    return path.substr(2, slash - 2);
}

}  // namespace npipe::detail
