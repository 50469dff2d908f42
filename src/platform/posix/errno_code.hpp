// POSIX errors as the codes npipe's users branch on.
#pragma once

#include <system_error>

namespace npipe::detail {

/// Maps an errno to the npipe error a user branches on, or a system_category code.
std::error_code errno_code(int error) noexcept;

}  // namespace npipe::detail
