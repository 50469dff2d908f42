#include "npipe/pipe_name.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "npipe/errors.hpp"
#include "platform/posix/local_socket.hpp"

namespace npipe {
namespace {

constexpr std::string_view prefix = "CoreFxPipe_";
constexpr std::size_t sun_path_size = 108;

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

}  // namespace

std::string pipe_path(std::string_view name, std::error_code& ec) {
    ec.clear();
    if (name.empty() || name.find('\0') != std::string_view::npos || iequals(name, "anonymous")) {
        ec = errc::invalid_name;
        return {};
    }
    std::string path;
    if (name.front() == '/') {
        if (name.back() == '/') {
            ec = errc::invalid_name;
            return {};
        }
        path = name;
    } else {
        if (name.find('/') != std::string_view::npos) {
            ec = errc::invalid_name;
            return {};
        }
        path = detail::temp_directory();
        path += prefix;
        path += name;
    }
    if (path.size() + 1 > sun_path_size) {
        ec = errc::path_too_long;
        return {};
    }
    return path;
}

// Which naming rule `name` breaks, for the message of errc::invalid_name.
static const char* broken_name_rule(std::string_view name) {
    if (name.empty())
        return "a pipe name may not be empty";
    if (name.find('\0') != std::string_view::npos)
        return "a pipe name may not contain a NUL byte";
    if (iequals(name, "anonymous"))
        return "'anonymous' is reserved (as in .NET)";
    if (name.front() == '/')
        return "a socket path may not end with '/'";
    return "a simple name may not contain '/' (a socket path starts with '/')";
}

std::string pipe_path(std::string_view name) {
    std::error_code ec;
    auto path = pipe_path(name, ec);
    if (ec)
        throw pipe_error(
            ec, name,
            ec == errc::invalid_name ? broken_name_rule(name) : "map name to socket path");
    return path;
}

std::vector<pipe_info> list_pipes() {
    auto listening = detail::listening_socket_paths();
    const detail::bound_sockets bound;  // one look at the kernel's sockets for every file
    std::set<std::string> paths;
    std::vector<pipe_info> pipes;
    auto add = [&](std::string name, const std::string& path) {
        struct stat st {};
        if (!paths.insert(path).second || ::lstat(path.c_str(), &st) != 0 ||
            !S_ISSOCK(st.st_mode) || detail::is_shared_memory_rendezvous(path))
            return;
        pipes.push_back({std::move(name), path, detail::is_live_socket(path, st, bound), st.st_uid,
                         st.st_gid, st.st_mode & 07777});
    };

    auto dir = detail::temp_directory();
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string_view file = e->d_name;
            if (file.starts_with(prefix))
                add(std::string(file.substr(prefix.size())), dir + e->d_name);
        }
        ::closedir(d);
    }
    for (auto& path : listening)
        add(path, path);
    std::sort(pipes.begin(), pipes.end(),
              [](const pipe_info& a, const pipe_info& b) { return a.path < b.path; });
    return pipes;
}

}  // namespace npipe
