// cleanup.hpp on Windows: a pipe there is no file, so a process that Ctrl+C ends leaves nothing
// behind (Windows closes its handles, and the pipe goes with the last one). Nothing to hold.
#include "cleanup.hpp"

namespace npipe::cli {

remove_on_signal::remove_on_signal(const std::string&) {}
remove_on_signal::~remove_on_signal() = default;

stop_signals_held::stop_signals_held() = default;
void stop_signals_held::release() noexcept {}

}  // namespace npipe::cli
