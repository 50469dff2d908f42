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

console_group_process::console_group_process(std::string command_line) {
    // The event travels through a console the two processes share: a test run without one
    // (a service, Wine with no terminal) gets its own.
    if (!::GetConsoleWindow())
        ::AllocConsole();
    STARTUPINFOA startup{};
    startup.cb = sizeof startup;
    PROCESS_INFORMATION info{};
    if (!::CreateProcessA(nullptr, command_line.data(), nullptr, nullptr, FALSE,
                          CREATE_NEW_PROCESS_GROUP, nullptr, nullptr, &startup, &info))
        throw std::runtime_error("cannot start " + command_line + ": error " +
                                 std::to_string(::GetLastError()));
    ::CloseHandle(info.hThread);
    process_ = info.hProcess;
    pid_ = info.dwProcessId;
}

console_group_process::~console_group_process() {
    if (::WaitForSingleObject(process_, 0) == WAIT_TIMEOUT)
        ::TerminateProcess(process_, 99);
    ::CloseHandle(process_);
}

std::optional<unsigned long> console_group_process::ctrl_break_and_wait(
    std::chrono::milliseconds timeout) {
    if (!::GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid_)) {
        DWORD error = ::GetLastError();
        [&] {
            NPIPE_SKIP_ON_WINE("GenerateConsoleCtrlEvent fails without a terminal (error " +
                               std::to_string(error) + "): no Ctrl+C or Ctrl+Break can be sent");
            ADD_FAILURE() << "GenerateConsoleCtrlEvent: error " << error;
        }();
        return std::nullopt;
    }
    if (::WaitForSingleObject(process_, static_cast<DWORD>(timeout.count())) == WAIT_TIMEOUT) {
        [&] {
            NPIPE_SKIP_ON_WINE(
                "GenerateConsoleCtrlEvent reports success but delivers no "
                "Ctrl+Break");
            ADD_FAILURE() << "Ctrl+Break did not end the process";
        }();
        return std::nullopt;
    }
    DWORD code = 0;
    if (!::GetExitCodeProcess(process_, &code))
        return std::nullopt;
    return code;
}

bool server_listens(const std::string& name, std::chrono::milliseconds timeout) {
    std::wstring path = L"\\\\.\\pipe\\" + std::wstring(name.begin(), name.end());
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        if (::WaitNamedPipeW(path.c_str(), 50))
            return true;
        ::Sleep(50);  // no server object yet: WaitNamedPipeW fails at once
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
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
