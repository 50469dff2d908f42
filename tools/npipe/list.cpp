// `npipe list`: the pipes on this machine, live or stale.
#ifndef _WIN32
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cstdio>
#include <iostream>
#include <map>

#include "commands.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe::cli {
namespace {

#ifdef _WIN32
// Windows lists no owner for a pipe (pipe_info::owner is 0 there).
std::string user_name(user_id) {
    return "-";
}
#else
std::string user_name(uid_t uid) {
    if (passwd* p = ::getpwuid(uid))
        return p->pw_name;
    return std::to_string(uid);
}
#endif

// A file name made safe for a terminal: any user can name a socket, and a name with a newline
// or escape sequences must not forge lines or drive the viewer's terminal. C-style escapes.
std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);  // UTF-8 and printable ASCII as they are
        }
    }
    return out;
}

// A JSON string literal. Bytes that are not valid UTF-8 text are still escaped (as \u00XX of
// the byte), so the output is always valid JSON.
std::string json_string(const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\u%04x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

bool in_temp_directory(const pipe_info& p) {
    return p.name != p.path;  // CoreFxPipe_NAME: the name a client uses, not the path
}

#ifndef _WIN32
// Removes the stale sockets of ours among `pipes`, rechecked just before: a file that became
// live, or was replaced (another inode), since the listing is left alone.
void clean(const std::vector<pipe_info>& pipes) {
    std::map<std::string, ino_t> candidates;
    for (auto& p : pipes) {
        struct stat st {};
        if (!p.live && p.owner == ::geteuid() && ::lstat(p.path.c_str(), &st) == 0 &&
            S_ISSOCK(st.st_mode))
            candidates[p.path] = st.st_ino;
    }
    for (auto& p : list_pipes()) {
        auto it = candidates.find(p.path);
        struct stat st {};
        if (it == candidates.end() || p.live || ::lstat(p.path.c_str(), &st) != 0 ||
            st.st_ino != it->second || st.st_uid != ::geteuid())
            continue;
        if (::unlink(p.path.c_str()) == 0)
            std::cout << "removed " << printable(p.path) << '\n';
        else
            std::cerr << "npipe: list --clean: cannot remove " << printable(p.path) << '\n';
    }
}

#endif

}  // namespace

void add_list_command(CLI::App& app) {
    static bool all = false, json = false, do_clean = false;
    auto* cmd = app.add_subcommand(
        "list", "List pipes: the temp directory's CoreFxPipe_* sockets, live or stale");
    cmd->add_flag("--all", all,
                  "Also every other listening Unix socket with a path (rooted pipe names)");
    cmd->add_flag("--json", json,
                  "One JSON array of {name, path, state, owner, uid, mode} objects");
    cmd->add_flag("--clean", do_clean,
                  "Remove the stale sockets you own (left by crashed servers); live ones and "
                  "other users' are never touched");
    cmd->footer(R"(Names are printed with control characters escaped (\x1b, \x0a; a backslash
as \\): any user can name a socket. Liveness is read from the kernel without connecting.

Examples:
  npipe list                   live and stale CoreFxPipe_* pipes, owner and mode
  npipe list --all --json      every listening Unix socket, for scripts
  npipe list --clean           remove your stale socket files)");
    cmd->callback([] {
        std::vector<pipe_info> pipes;
        for (auto& p : list_pipes())
            if (all || in_temp_directory(p))
                pipes.push_back(std::move(p));
        if (do_clean) {
#ifdef _WIN32
            throw exit_request{2, "list --clean: a Windows pipe leaves no file behind to clean"};
#else
            clean(pipes);
            return;
#endif
        }
        if (json) {
            std::string out = "[";
            for (auto& p : pipes) {
                char mode[8];
                std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(p.mode));
                out += (out.size() > 1 ? ",\n " : "") + std::string("{\"name\":") +
                       json_string(p.name) + ",\"path\":" + json_string(p.path) + ",\"state\":\"" +
                       (p.live ? "live" : "stale") +
                       "\",\"owner\":" + json_string(user_name(p.owner)) +
                       ",\"uid\":" + std::to_string(p.owner) + ",\"mode\":\"" + mode + "\"}";
            }
            std::cout << out << "]\n";
            return;
        }
        std::printf("%-5s %-10s %-4s %s\n", "STATE", "OWNER", "MODE", "NAME (PATH)");
        for (auto& p : pipes) {
            std::printf("%-5s %-10s %04o %s", p.live ? "live" : "stale",
                        printable(user_name(p.owner)).c_str(), static_cast<unsigned>(p.mode),
                        printable(p.name).c_str());
            if (p.name != p.path)
                std::printf(" (%s)", printable(p.path).c_str());
            std::printf("\n");
        }
    });
}

}  // namespace npipe::cli
