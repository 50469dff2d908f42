// Flag syntax shared by every subcommand: durations with units, sizes with units, and the
// defaults more than one subcommand uses. One parser each, so `--timeout 2s` means the same
// wherever it is accepted.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstddef>
#include <string>

namespace npipe::cli {

/// What a bare number means in a duration flag (each flag keeps its historical unit).
enum class bare_unit { milliseconds, seconds };

/// The dead-peer timeout of remote pipes, the same on `connect` and `gateway`.
inline constexpr std::chrono::milliseconds default_dead_peer_timeout{30'000};

/// Parses "500ms", "2s", "1.5m", "1h" or a bare number in `bare`. Negative values, unknown
/// units and values past a year are refused with a message that names the accepted units.
/// Throws CLI::ValidationError naming `flag`.
std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text,
                                         bare_unit bare);

/// "1.5 s", "250 ms", "2 min": a duration as a person reads it.
std::string format_duration(std::chrono::milliseconds d);

/// Adds a duration option writing into `target` (parsed with parse_duration). The help text
/// gets the accepted units appended.
CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name,
                                 std::chrono::milliseconds& target, bare_unit bare,
                                 const std::string& description);

/// Parses a size: a number with an optional K, M or G suffix (KiB, MiB, GiB; case-insensitive).
/// Throws CLI::ValidationError naming `flag`.
std::size_t parse_size(const std::string& flag, const std::string& text);

/// Adds a size option writing into `target` (parsed with parse_size).
CLI::Option* add_size_option(CLI::App* cmd, const std::string& name, std::size_t& target,
                             const std::string& description);

/// Adds `--shared-memory` (pipe_options::shared_memory), worded the same on every command.
CLI::Option* add_shared_memory_flag(CLI::App* cmd, bool& target);

/// Parses serve's --max-instances: 1..254, or "unlimited" (max_allowed_server_instances).
/// Throws CLI::ValidationError naming the flag.
int parse_instances(const std::string& text);

/// "1.5 GiB", "640 KiB", "12 B": a byte count as a person reads it.
std::string format_bytes(double bytes);

}  // namespace npipe::cli
