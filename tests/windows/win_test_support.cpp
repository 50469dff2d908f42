#include "win_test_support.hpp"

#include <windows.h>

#include <stdexcept>

namespace npipe::test::windows {

const char* wine_version() noexcept {
    using get_version = const char*(__cdecl*)();
    HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
    auto fn = ntdll ? reinterpret_cast<get_version>(
                          reinterpret_cast<void*>(::GetProcAddress(ntdll, "wine_get_version")))
                    : nullptr;
    return fn ? fn() : nullptr;
}

unsigned long bytes_waiting(const npipe::pipe_stream& pipe) {
    DWORD n = 0;
    EXPECT_TRUE(::PeekNamedPipe(pipe.native_handle(), nullptr, 0, nullptr, &n, nullptr));
    return n;
}

std::string program_path(const std::string& name) {
    char buffer[MAX_PATH];
    DWORD n = ::GetModuleFileNameA(nullptr, buffer, MAX_PATH);
    if (n == 0 || n == MAX_PATH)
        throw std::runtime_error("cannot find this program's path");
    std::string self(buffer, n);
    return name.empty() ? self : self.substr(0, self.find_last_of('\\') + 1) + name;
}

namespace {
std::vector<std::string> command(const std::string& program, std::vector<std::string> args) {
    args.insert(args.begin(), program_path(program));
    return args;
}
}  // namespace

peer_process::peer_process(const std::vector<std::string>& args, const std::string& program,
                           npipe::process_options options)
    : child_(npipe::spawn(command(program, args), std::move(options))) {}

std::optional<unsigned long> peer_process::wait(std::chrono::milliseconds timeout) {
    auto status = child_.wait_for(timeout);
    if (!status)
        return std::nullopt;
    return static_cast<unsigned long>(status->code);
}

}  // namespace npipe::test::windows
