// Pipe names on Windows, as .NET maps them there: NAME is \\.\pipe\NAME, in the system's pipe
// namespace (no file, nothing to go stale).
#include <windows.h>

#include <algorithm>
#include <cctype>

#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe {
namespace {

constexpr std::string_view prefix = R"(\\.\pipe\)";
// The pipe file system's limit on a name (in UTF-16 code units), as in .NET.
constexpr std::size_t max_name_units = 256;

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

const char* broken_name_rule(std::string_view name) {
    if (name.empty())
        return "a pipe name may not be empty";
    if (name.find('\0') != std::string_view::npos)
        return "a pipe name may not contain a NUL byte";
    return "'anonymous' is reserved (as in .NET)";
}

}  // namespace

std::string pipe_path(std::string_view name, std::error_code& ec) {
    ec.clear();
    if (name.empty() || name.find('\0') != std::string_view::npos || iequals(name, "anonymous")) {
        ec = errc::invalid_name;
        return {};
    }
    if (detail::win::widen(name).size() + prefix.size() > max_name_units) {
        ec = errc::path_too_long;
        return {};
    }
    return std::string(prefix) + std::string(name);
}

std::string pipe_path(std::string_view name) {
    std::error_code ec;
    auto path = pipe_path(name, ec);
    if (ec)
        throw pipe_error(ec, name,
                         ec == errc::invalid_name ? broken_name_rule(name)
                                                  : "map name to a pipe path (256 characters "
                                                    "at most)");
    return path;
}

std::vector<pipe_info> list_pipes() {
    std::vector<pipe_info> pipes;
    WIN32_FIND_DATAW found;
    HANDLE search = ::FindFirstFileW(LR"(\\.\pipe\*)", &found);
    if (search == INVALID_HANDLE_VALUE) {
        DWORD error = ::GetLastError();
        if (error == ERROR_FILE_NOT_FOUND || error == ERROR_NO_MORE_FILES)
            return pipes;
        throw pipe_error(detail::win::win_code(error), "", R"(list \\.\pipe\)");
    }
    do {
        auto name = detail::win::narrow(found.cFileName);
        // The pipe namespace has no stale entries and no POSIX owner or mode.
        pipes.push_back({name, std::string(prefix) + name, true, 0, 0, 0});
    } while (::FindNextFileW(search, &found));
    ::FindClose(search);
    std::sort(pipes.begin(), pipes.end(),
              [](const pipe_info& a, const pipe_info& b) { return a.path < b.path; });
    return pipes;
}

}  // namespace npipe
