// Child processes on Windows: CreateProcessW with a PROC_THREAD_ATTRIBUTE_HANDLE_LIST, so the
// child inherits exactly the handles it is given (its standard handles and inherit_fds), under
// the same values, whatever else in this process is inheritable.
#include "npipe/process.hpp"

#include <windows.h>

#include <algorithm>
#include <mutex>

#include "npipe/errors.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe {

struct child_process::impl {
    detail::win::unique_handle process;
    process_id pid = 0;
};

namespace {

using detail::win::unique_handle;
using detail::win::widen;

[[noreturn]] void fail(std::error_code ec, const std::string& operation) {
    throw pipe_error(ec, "", operation);
}

// One argument quoted so that CommandLineToArgvW (and the C runtime) read it back as it was.
std::wstring quoted(const std::wstring& arg) {
    if (!arg.empty() && arg.find_first_of(L" \t\n\v\"") == std::wstring::npos)
        return arg;
    std::wstring out = L"\"";
    std::size_t backslashes = 0;
    for (wchar_t c : arg) {
        if (c == L'\\') {
            ++backslashes;
            continue;
        }
        out.append(c == L'"' ? backslashes * 2 + 1 : backslashes, L'\\');
        backslashes = 0;
        out += c;
    }
    out.append(backslashes * 2, L'\\');
    return out + L"\"";
}

// The handles in the list must be inheritable while CreateProcessW runs; each is restored
// afterwards, so a handle the caller did not make inheritable does not stay so.
class inheritable_while_spawning {
  public:
    explicit inheritable_while_spawning(const std::vector<HANDLE>& handles) {
        for (HANDLE h : handles) {
            DWORD flags = 0;
            if (!::GetHandleInformation(h, &flags))
                fail(detail::win::last_error(),
                     "spawn: handle " + std::to_string(reinterpret_cast<std::uintptr_t>(h)) +
                         " is not open");
            if (!(flags & HANDLE_FLAG_INHERIT)) {
                ::SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
                changed_.push_back(h);
            }
        }
    }
    ~inheritable_while_spawning() {
        for (HANDLE h : changed_)
            ::SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
    }
    inheritable_while_spawning(const inheritable_while_spawning&) = delete;
    inheritable_while_spawning& operator=(const inheritable_while_spawning&) = delete;

  private:
    std::vector<HANDLE> changed_;
};

}  // namespace

child_process::child_process() noexcept = default;
child_process::child_process(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
child_process::child_process(child_process&&) noexcept = default;

child_process& child_process::operator=(child_process&& other) noexcept {
    if (this != &other) {
        child_process old(std::move(*this));  // ends a child still running
        impl_ = std::move(other.impl_);
    }
    return *this;
}

child_process::~child_process() {
    if (!impl_ || !impl_->process)
        return;
    if (::WaitForSingleObject(impl_->process.get(), 0) == WAIT_TIMEOUT) {
        ::TerminateProcess(impl_->process.get(), 1);
        ::WaitForSingleObject(impl_->process.get(), INFINITE);
    }
}

process_id child_process::pid() const noexcept {
    return impl_ ? impl_->pid : 0;
}

std::optional<exit_status> child_process::wait_for(std::chrono::milliseconds timeout) {
    if (!impl_)
        fail(errc::invalid_argument, "wait for process: no process");
    auto ms = std::clamp<std::int64_t>(timeout.count(), 0, INFINITE - 1);
    DWORD r = ::WaitForSingleObject(impl_->process.get(), static_cast<DWORD>(ms));
    if (r == WAIT_TIMEOUT)
        return std::nullopt;
    DWORD code = 0;
    if (r != WAIT_OBJECT_0 || !::GetExitCodeProcess(impl_->process.get(), &code))
        fail(detail::win::last_error(), "wait for process " + std::to_string(impl_->pid));
    return exit_status{static_cast<int>(code), 0};
}

exit_status child_process::wait() {
    if (!impl_)
        fail(errc::invalid_argument, "wait for process: no process");
    return *wait_for(std::chrono::milliseconds(INFINITE - 1));
}

std::optional<exit_status> child_process::try_wait() {
    return wait_for(std::chrono::milliseconds(0));
}

void child_process::kill() {
    kill(15);
}

void child_process::kill(int sig) {
    // Windows has no signals: the child is terminated with exit code 128 + sig, the status a
    // shell would report for the signal on POSIX.
    if (impl_ && ::WaitForSingleObject(impl_->process.get(), 0) == WAIT_TIMEOUT)
        ::TerminateProcess(impl_->process.get(), static_cast<UINT>(128 + sig));
}

child_process spawn(std::vector<std::string> argv, process_options options) {
    if (argv.empty())
        fail(errc::invalid_argument, "spawn: empty argv");
    std::wstring command;
    for (auto& a : argv)
        command += (command.empty() ? L"" : L" ") + quoted(widen(a));
    const std::string what = "spawn '" + argv[0] + "'";

    STARTUPINFOEXW si{};
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput =
        options.stdin_fd ? *options.stdin_fd : ::GetStdHandle(STD_INPUT_HANDLE);
    si.StartupInfo.hStdOutput =
        options.stdout_fd ? *options.stdout_fd : ::GetStdHandle(STD_OUTPUT_HANDLE);
    si.StartupInfo.hStdError =
        options.stderr_fd ? *options.stderr_fd : ::GetStdHandle(STD_ERROR_HANDLE);
    std::vector<HANDLE> handles;
    for (HANDLE h : options.inherit_fds) {
        if (!h || h == INVALID_HANDLE_VALUE)
            fail(errc::invalid_argument, what + ": an inherit_fds entry is not a handle");
        handles.push_back(h);
    }
    for (HANDLE h : {si.StartupInfo.hStdInput, si.StartupInfo.hStdOutput, si.StartupInfo.hStdError})
        if (h && h != INVALID_HANDLE_VALUE)
            handles.push_back(h);
    std::sort(handles.begin(), handles.end());
    handles.erase(std::unique(handles.begin(), handles.end()), handles.end());

    SIZE_T size = 0;
    ::InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
    std::vector<std::byte> list_storage(size);
    auto* list = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(list_storage.data());
    if (!::InitializeProcThreadAttributeList(list, 1, 0, &size))
        fail(detail::win::last_error(), what + ": initialise the attribute list");
    struct list_guard {
        LPPROC_THREAD_ATTRIBUTE_LIST list;
        ~list_guard() { ::DeleteProcThreadAttributeList(list); }
    } guard{list};
    if (!handles.empty() &&
        !::UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, handles.data(),
                                     handles.size() * sizeof(HANDLE), nullptr, nullptr))
        fail(detail::win::last_error(), what + ": set the handle list");
    si.lpAttributeList = list;

    std::wstring environment;
    if (options.env) {
        for (auto& entry : *options.env)
            environment += widen(entry) + L'\0';
        environment += L'\0';
    }
    std::wstring directory =
        options.working_directory ? widen(*options.working_directory) : std::wstring();

    PROCESS_INFORMATION pi{};
    BOOL ok;
    {
        inheritable_while_spawning inherit(handles);
        ok = ::CreateProcessW(nullptr, command.data(), nullptr, nullptr, !handles.empty(),
                              EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT,
                              options.env ? environment.data() : nullptr,
                              options.working_directory ? directory.c_str() : nullptr,
                              &si.StartupInfo, &pi);
    }
    if (!ok)
        fail(detail::win::last_error(), what + ": CreateProcessW");
    ::CloseHandle(pi.hThread);
    auto p = std::make_unique<child_process::impl>();
    p->process.reset(pi.hProcess);
    p->pid = static_cast<process_id>(pi.dwProcessId);
    return child_process(std::move(p));
}

}  // namespace npipe
