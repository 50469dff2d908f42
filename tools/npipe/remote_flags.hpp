// `npipe connect`'s flags for pipes on other machines (through `npipe gateway`). Defined in
// gateway.cpp; used by connect.cpp when the CLI is built with npipe::remote (NPIPE_HAVE_REMOTE).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "flags.hpp"
#include "npipe/options.hpp"

namespace npipe::cli {

struct remote_client_flags {
    std::string ca_file, cert_file, key_file, token_file;
    std::chrono::milliseconds dead_peer_timeout = default_dead_peer_timeout;
};

/// Adds --ca, --cert, --key, --token-file and --dead-peer-timeout to `cmd`.
void add_remote_client_flags(CLI::App* cmd, remote_client_flags& flags);

/// Turns NAME "//HOST/pipe/PIPE" into server HOST and name PIPE, and for a server that is not
/// this machine sets options.remote from the flags (the token file is read here). For this
/// machine, TLS flags (which would be ignored) are a usage error.
void apply_remote_client_flags(const remote_client_flags& flags, std::string& server,
                               std::string& name, pipe_options& options);

}  // namespace npipe::cli
