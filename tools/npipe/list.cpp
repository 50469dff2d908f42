// `npipe list`: the pipes on this machine, live or stale.
#include <pwd.h>

#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe::cli {
namespace {

std::string user_name(uid_t uid) {
    if (passwd* p = ::getpwuid(uid))
        return p->pw_name;
    return std::to_string(uid);
}

}  // namespace

void add_list_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "list",
        "List pipes: the temp directory's CoreFxPipe_* sockets and other listening sockets");
    cmd->callback([] {
        auto pipes = list_pipes();
        std::printf("%-5s %-10s %-4s %s\n", "STATE", "OWNER", "MODE", "NAME (PATH)");
        for (auto& p : pipes) {
            std::printf("%-5s %-10s %04o %s", p.live ? "live" : "stale", user_name(p.owner).c_str(),
                        static_cast<unsigned>(p.mode), p.name.c_str());
            if (p.name != p.path)
                std::printf(" (%s)", p.path.c_str());
            std::printf("\n");
        }
    });
}

}  // namespace npipe::cli
