#include "serve_sessions.hpp"

#include <iostream>
#include <limits>

#include "commands.hpp"
#include "npipe/errors.hpp"
#include "npipe/printable.hpp"

namespace npipe::cli {

std::unique_ptr<session_supervisor> make_session_supervisor(const std::vector<std::string>& command,
                                                            std::chrono::milliseconds kill_grace,
                                                            std::optional<exit_status>& last) {
    supervisor_options so;
    so.kill_grace = kill_grace;
    so.on_end = [&last](const session_end& end) { last = end.status; };
    try {
        return std::make_unique<session_supervisor>(command, std::move(so));
    } catch (const pipe_error& e) {
        throw exit_request{e.code() == std::errc::no_such_file_or_directory ? 127 : 126, e.what()};
    }
}

int serve_sessions(const std::string& name, named_pipe_server& server, session_supervisor& sessions,
                   int instances, bool once, const std::optional<exit_status>& last,
                   const session_hooks& hooks) {
    const std::size_t limit = instances == max_allowed_server_instances
                                  ? std::numeric_limits<std::size_t>::max()
                                  : static_cast<std::size_t>(instances);
    int result = 0;
    // Full: the next client waits in the backlog until a session ends.
    while (sessions.wait_for_room(limit)) {
        std::error_code ec;
        server.wait_for_connection(ec);
        if (ec == errc::operation_aborted)
            break;
        if (ec)
            throw pipe_error(ec, name, "wait for connection");
        if (hooks.before_start)
            hooks.before_start(server);
        std::error_code start_ec;
        sessions.start(server.native_handle(), start_ec);
        if (start_ec && start_ec != errc::operation_aborted) {
            // This client alone fails; the sessions running and the server go on.
            std::cerr << "npipe: pipe '" << printable(name) << "': could not start '"
                      << printable(sessions.program()) << "' for a client: " << start_ec.message()
                      << '\n';
            if (hooks.start_failed)
                hooks.start_failed(server);
        }
        server.disconnect();  // closes our copy only: the session keeps the connection
        if (once) {
            if (start_ec) {
                result = start_ec == std::errc::no_such_file_or_directory ? 127 : 126;
                break;
            }
            sessions.wait_all();
            result = last ? last->shell_code() : 0;
            break;
        }
    }
    sessions.wait_all();  // after a stop: the grace period's end at the latest
    return result;
}

}  // namespace npipe::cli
