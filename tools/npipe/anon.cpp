// Placeholder until the anonymous-pipe commands land (issue 3); owned by that work.
#include "commands.hpp"

namespace npipe::cli {
void add_anon_command(CLI::App&) {}
}  // namespace npipe::cli
