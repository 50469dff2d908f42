// npipe/types.hpp: the portable names of what the operating system identifies things by.
// Platform-only knobs and conversions are in the platform's own header (npipe/posix.hpp).
#pragma once

#include <cstdint>

namespace npipe {

#if defined(_WIN32)
/// The OS handle of a connection or pipe end: a HANDLE on Windows.
using native_handle_type = void*;
/// What native_handle() returns when there is no handle (Windows handles are never null).
inline constexpr native_handle_type invalid_native_handle = nullptr;
#else
/// The OS handle of a connection or pipe end: a file descriptor on POSIX systems.
using native_handle_type = int;
/// What native_handle() returns when there is no handle.
inline constexpr native_handle_type invalid_native_handle = -1;
#endif

/// A user, a group and a process as the kernel reports them for a peer (on POSIX, the system's
/// user, group and process id types: npipe/posix.hpp checks that these match them).
using user_id = std::uint32_t;
using group_id = std::uint32_t;
using process_id = std::int32_t;

/// A file's permission bits (on POSIX, the 07777 part of a file mode).
using file_mode = std::uint32_t;

}  // namespace npipe
