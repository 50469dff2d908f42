#include "flags.hpp"

#include <cmath>
#include <cstdio>
#include <string_view>

#include "npipe/options.hpp"

#include "common/harness.hpp"  // the size parser

namespace npipe::cli {
namespace {

constexpr const char* duration_units = "use ms, s, m or h, e.g. 500ms, 2s, 1m";

// The number of milliseconds in one `unit`, or 0 when the unit is unknown.
double unit_ms(std::string_view unit, bare_unit bare) {
    if (unit.empty())
        return bare == bare_unit::seconds ? 1000.0 : 1.0;
    if (unit == "ms")
        return 1.0;
    if (unit == "s" || unit == "sec")
        return 1000.0;
    if (unit == "m" || unit == "min")
        return 60'000.0;
    if (unit == "h")
        return 3'600'000.0;
    return 0;
}

// The problem with `text` as a duration, or "" with `out` set.
std::string duration_problem(const std::string& text, bare_unit bare,
                             std::chrono::milliseconds& out) {
    std::size_t i = 0;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
        ++i;
    if (!text.empty() && text[0] == '-')
        return "must not be negative, got '" + text + "'";
    double value = 0;
    try {
        std::size_t used = 0;
        value = std::stod(text.substr(0, i), &used);
        if (used != i)
            i = 0;
    } catch (const std::exception&) {
        i = 0;
    }
    if (i == 0)
        return "'" + text + "' is not a duration (" + duration_units + ")";
    double scale = unit_ms(std::string_view(text).substr(i), bare);
    if (scale == 0)
        return "unknown unit in '" + text + "' (" + duration_units + ")";
    double ms = std::ceil(value * scale);
    if (ms > 365.0 * 24 * 3'600'000)
        return "'" + text + "' is more than a year";
    out = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
    return {};
}

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text,
                                         bare_unit bare) {
    std::chrono::milliseconds out{0};
    if (auto problem = duration_problem(text, bare, out); !problem.empty())
        throw CLI::ValidationError(flag, problem);
    return out;
}

std::string format_duration(std::chrono::milliseconds d) {
    char text[64];
    auto ms = d.count();
    if (ms < 1000)
        std::snprintf(text, sizeof text, "%lld ms", static_cast<long long>(ms));
    else if (ms < 120'000)
        std::snprintf(text, sizeof text, "%g s", static_cast<double>(ms) / 1000.0);
    else
        std::snprintf(text, sizeof text, "%g min", static_cast<double>(ms) / 60'000.0);
    return text;
}

CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name,
                                 std::chrono::milliseconds& target, bare_unit bare,
                                 const std::string& description) {
    std::string bare_text = bare == bare_unit::seconds ? "seconds" : "milliseconds";
    auto* option = cmd->add_option_function<std::string>(
        name,
        [&target, bare, name](const std::string& text) {
            target = parse_duration(name, text, bare);
        },
        description + " [DURATION: 500ms, 2s, 1m; a bare number is " + bare_text + "]");
    option->type_name("DURATION");
    option->check(CLI::Validator(
        [bare](std::string& text) {
            std::chrono::milliseconds unused{0};
            return duration_problem(text, bare, unused);
        },
        ""));
    return option;
}

std::size_t parse_size(const std::string& flag, const std::string& text) {
    try {
        return bench::parse_size(text);
    } catch (const bench::bench_error& e) {
        throw CLI::ValidationError(flag, e.what());
    }
}

CLI::Option* add_shared_memory_flag(CLI::App* cmd, bool& target) {
    return cmd->add_flag("--shared-memory", target,
                         "Move the data through shared memory when the other end is an npipe "
                         "program that asks for it too; any other peer (.NET, Mono, npipe without "
                         "the flag) gets the ordinary socket pipe");
}

CLI::Option* add_size_option(CLI::App* cmd, const std::string& name, std::size_t& target,
                             const std::string& description) {
    auto* option = cmd->add_option_function<std::string>(
        name, [&target, name](const std::string& text) { target = parse_size(name, text); },
        description + " [SIZE: bytes, or with K, M or G]");
    option->type_name("SIZE");
    option->check(CLI::Validator(
        [](std::string& text) {
            try {
                bench::parse_size(text);
                return std::string();
            } catch (const bench::bench_error& e) {
                return std::string(e.what());
            }
        },
        ""));
    return option;
}

std::string format_bytes(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    char text[64];
    std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return text;
}

int parse_instances(const std::string& text) {
    if (text == "unlimited")
        return max_allowed_server_instances;
    std::size_t used = 0;
    int n = -1;
    try {
        n = std::stoi(text, &used);
    } catch (const std::exception&) {
    }
    if (used != text.size() || n < 1 || n > max_server_instances_limit)
        throw CLI::ValidationError("--max-instances",
                                   "expected 1..254 or 'unlimited', got '" + text + "'");
    return n;
}

}  // namespace npipe::cli
