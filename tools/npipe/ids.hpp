// User and group arguments of the CLI's flags (serve's --allow-uid and --group, the gateway's
// --allow-owner): a number, or a name looked up in the system's databases.
#pragma once

#include <grp.h>
#include <pwd.h>
#include <CLI/CLI.hpp>

#include <exception>
#include <optional>
#include <string>

namespace npipe::cli {

// A number, or a name looked up with `lookup` (getpwnam / getgrnam).
template <typename Lookup>
inline unsigned parse_id(const std::string& flag, const std::string& text, Lookup lookup) {
    std::size_t used = 0;
    unsigned long id = 0;
    try {
        id = std::stoul(text, &used, 10);
    } catch (const std::exception&) {
        used = 0;
    }
    if (!text.empty() && used == text.size() && id < 0xffffffffUL)
        return static_cast<unsigned>(id);
    if (auto found = lookup(text))
        return *found;
    throw CLI::ValidationError(flag, "no such user or group: '" + text + "'");
}

inline std::optional<unsigned> user_id(const std::string& name) {
    if (passwd* p = ::getpwnam(name.c_str()))
        return p->pw_uid;
    return std::nullopt;
}

inline std::optional<unsigned> group_id(const std::string& name) {
    if (group* g = ::getgrnam(name.c_str()))
        return g->gr_gid;
    return std::nullopt;
}

}  // namespace npipe::cli
