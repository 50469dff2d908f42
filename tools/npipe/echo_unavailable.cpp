// `serve --echo` in a build without npipe::asio (NPIPE_BUILD_ASIO=OFF): the flag stays, so
// scripts get a clear refusal instead of "unknown flag".
#include "commands.hpp"

namespace npipe::cli {

void run_echo_server(const std::string&, bool, int, const pipe_options&, const relay_options&) {
    throw exit_request{2,
                       "serve --echo: this build has no async layer (configured with "
                       "NPIPE_BUILD_ASIO=OFF)"};
}

}  // namespace npipe::cli
