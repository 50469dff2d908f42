// What the Windows pieces of npipe share: an owning HANDLE, Win32 errors as npipe's error codes,
// UTF-8 <-> UTF-16 for names, and the users' SIDs behind peer_credentials::uid.
#pragma once

#include <windows.h>

#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "npipe/types.hpp"

namespace npipe::detail::win {

/// Owns a HANDLE (null or INVALID_HANDLE_VALUE: none) and closes it once.
class unique_handle {
  public:
    unique_handle() noexcept = default;
    explicit unique_handle(HANDLE h) noexcept : h_(h == INVALID_HANDLE_VALUE ? nullptr : h) {}
    unique_handle(unique_handle&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
    unique_handle& operator=(unique_handle&& other) noexcept {
        if (this != &other)
            reset(std::exchange(other.h_, nullptr));
        return *this;
    }
    ~unique_handle() { reset(); }
    unique_handle(const unique_handle&) = delete;
    unique_handle& operator=(const unique_handle&) = delete;

    HANDLE get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    HANDLE release() noexcept { return std::exchange(h_, nullptr); }
    void reset(HANDLE h = nullptr) noexcept {
        if (h_)
            ::CloseHandle(h_);
        h_ = h == INVALID_HANDLE_VALUE ? nullptr : h;
    }

  private:
    HANDLE h_ = nullptr;
};

/// A Win32 error as the code npipe reports: the pipe conditions (broken pipe, busy, access
/// denied, a bad name) as npipe::errc, everything else in std::system_category().
std::error_code win_code(DWORD error) noexcept;

/// The calling thread's last Win32 error, as win_code() maps it.
inline std::error_code last_error() noexcept {
    return win_code(::GetLastError());
}

std::wstring widen(std::string_view utf8);
std::string narrow(std::wstring_view utf16);

/// A SID as bytes.
using sid_bytes = std::vector<BYTE>;

/// The user SID in `token` (TokenUser); empty when it cannot be read.
sid_bytes token_user(HANDLE token);
/// The user this process runs as.
const sid_bytes& current_user();

/// peer_credentials::uid on Windows: a small number standing for a SID, the same for the same
/// SID within this process (a SID does not fit in 32 bits). Never a Windows RID.
user_id intern_sid(const sid_bytes& sid);
/// The SID `uid` stands for; empty when it stands for none.
sid_bytes interned_sid(user_id uid);

/// Whether this process runs under Wine (ntdll exports wine_get_version), and its version.
const char* wine_version() noexcept;

}  // namespace npipe::detail::win
