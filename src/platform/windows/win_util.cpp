#include "platform/windows/win_util.hpp"

// sddl.h needs windows.h first (win_util.hpp).
#include <sddl.h>

#include <mutex>

#include "npipe/errors.hpp"
#include "npipe/windows.hpp"

namespace npipe::detail::win {

std::error_code win_code(DWORD error) noexcept {
    switch (error) {
        case ERROR_BROKEN_PIPE:
        case ERROR_NO_DATA:
        case ERROR_PIPE_NOT_CONNECTED:
            return errc::broken_pipe;
        case ERROR_ACCESS_DENIED:
            return errc::access_denied;
        case ERROR_PIPE_BUSY:
            return errc::all_instances_busy;
        case ERROR_INVALID_NAME:
        case ERROR_BAD_PATHNAME:
            return errc::invalid_name;
        case ERROR_FILENAME_EXCED_RANGE:
            return errc::path_too_long;
        case ERROR_SEM_TIMEOUT:
            return errc::timed_out;
        case ERROR_OPERATION_ABORTED:
            return errc::operation_aborted;
        default:
            return {static_cast<int>(error), std::system_category()};
    }
}

std::wstring widen(std::string_view utf8) {
    if (utf8.empty())
        return {};
    int n =
        ::MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
    std::wstring out(static_cast<std::size_t>(n > 0 ? n : 0), L'\0');
    if (n > 0)
        ::MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), out.data(),
                              n);
    return out;
}

std::string narrow(std::wstring_view utf16) {
    if (utf16.empty())
        return {};
    int n = ::WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()), nullptr,
                                  0, nullptr, nullptr);
    std::string out(static_cast<std::size_t>(n > 0 ? n : 0), '\0');
    if (n > 0)
        ::WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()), out.data(),
                              n, nullptr, nullptr);
    return out;
}

sid_bytes token_user(HANDLE token) {
    DWORD size = 0;
    ::GetTokenInformation(token, TokenUser, nullptr, 0, &size);
    if (size == 0)
        return {};
    std::vector<BYTE> info(size);
    if (!::GetTokenInformation(token, TokenUser, info.data(), size, &size))
        return {};
    PSID sid = reinterpret_cast<TOKEN_USER*>(info.data())->User.Sid;
    auto* first = static_cast<BYTE*>(sid);
    return sid_bytes(first, first + ::GetLengthSid(sid));
}

const sid_bytes& current_user() {
    static const sid_bytes user = [] {
        HANDLE token = nullptr;
        if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token))
            return sid_bytes();
        unique_handle owned(token);
        return token_user(token);
    }();
    return user;
}

namespace {
std::mutex sids_mutex;
std::vector<sid_bytes>& sids() {
    static std::vector<sid_bytes> table;
    return table;
}
}  // namespace

user_id intern_sid(const sid_bytes& sid) {
    if (sid.empty())
        return static_cast<user_id>(-1);
    std::lock_guard lock(sids_mutex);
    auto& table = sids();
    for (std::size_t i = 0; i < table.size(); ++i)
        if (table[i] == sid)
            return static_cast<user_id>(i);
    table.push_back(sid);
    return static_cast<user_id>(table.size() - 1);
}

sid_bytes interned_sid(user_id uid) {
    std::lock_guard lock(sids_mutex);
    auto& table = sids();
    return uid < table.size() ? table[uid] : sid_bytes();
}

const char* wine_version() noexcept {
    using get_version = const char*(__cdecl*)();
    HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
    if (!ntdll)
        return nullptr;
    auto fn = reinterpret_cast<get_version>(
        reinterpret_cast<void*>(::GetProcAddress(ntdll, "wine_get_version")));
    return fn ? fn() : nullptr;
}

}  // namespace npipe::detail::win

namespace npipe::windows {

std::string sid_string(user_id uid) {
    auto sid = detail::win::interned_sid(uid);
    if (sid.empty())
        return {};
    wchar_t* text = nullptr;
    if (!::ConvertSidToStringSidW(sid.data(), &text))
        return {};
    auto out = detail::win::narrow(text);
    ::LocalFree(text);
    return out;
}

}  // namespace npipe::windows
