// libFuzzer target for name-to-path mapping (npipe::pipe_path): names come from command lines,
// configuration and other programs, and the path decides which file a server binds and a client
// trusts, so the mapping must be exact and total.
//
// Input: byte 0 picks $TMPDIR (unset, empty, with or without '/', long), the rest is the name.
// Checks, aborting on any violation, against an independent statement of the rules
// (docs/protocol.md, "Names and socket paths"):
//  1. the error_code overload fails exactly when the rules say, with the rule's code;
//  2. a rooted name maps to itself, a simple one to <temp>/CoreFxPipe_<name>; the path and its
//     NUL always fit in sockaddr_un (never truncated);
//  3. the throwing overload agrees: same path, or a pipe_error with the same code naming the pipe.
// tests/security/security_test.cpp runs this entry point on random inputs in every build.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"

namespace {

const char* const temp_dirs[] = {nullptr,
                                 "",
                                 "/tmp",
                                 "/tmp/",
                                 "/var/tmp/x",
                                 "/a/rather/long/temporary/directory/name/to/push/paths/near/"
                                 "the/limit/of/sockaddr_un"};

bool is_anonymous(std::string_view name) {
    if (name.size() != 9)
        return false;
    for (std::size_t i = 0; i < 9; ++i)
        if (std::tolower(static_cast<unsigned char>(name[i])) != "anonymous"[i])
            return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    const char* tmp = temp_dirs[data[0] % (sizeof temp_dirs / sizeof temp_dirs[0])];
    if (tmp)
        ::setenv("TMPDIR", tmp, 1);
    else
        ::unsetenv("TMPDIR");
    std::string_view name(reinterpret_cast<const char*>(data) + 1, size - 1);

    // The rules, stated independently.
    std::string temp = tmp && *tmp ? tmp : "/tmp/";
    if (temp.back() != '/')
        temp += '/';
    std::error_code want;
    std::string want_path;
    if (name.empty() || name.find('\0') != std::string_view::npos || is_anonymous(name))
        want = npipe::errc::invalid_name;
    else if (name.front() == '/')
        want_path = name.back() == '/' ? (want = npipe::errc::invalid_name, "") : std::string(name);
    else if (name.find('/') != std::string_view::npos)
        want = npipe::errc::invalid_name;
    else
        want_path = temp + "CoreFxPipe_" + std::string(name);
    if (!want && want_path.size() + 1 > 108)
        want = npipe::errc::path_too_long;

    std::error_code ec;
    std::string path = npipe::pipe_path(name, ec);
    FUZZ_CHECK(ec == want);
    if (!ec) {
        FUZZ_CHECK(path == want_path);
        FUZZ_CHECK(path.size() < 108);
        FUZZ_CHECK(path.find('\0') == std::string::npos);
    } else {
        FUZZ_CHECK(path.empty());
    }
    try {
        FUZZ_CHECK(npipe::pipe_path(name) == path);
        FUZZ_CHECK(!ec);
    } catch (const npipe::pipe_error& e) {
        FUZZ_CHECK(ec);
        FUZZ_CHECK(e.code() == ec);
        FUZZ_CHECK(e.pipe_name() == name);
    }
    return 0;
}
