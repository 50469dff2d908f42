// Small pieces every POSIX transport needs: the iovec array of a send, the EINTR retry.
#pragma once

#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <system_error>

#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"

namespace npipe::detail {

/// Fills `iov` with the non-empty pieces and returns how many; more than four fails with
/// errc::invalid_argument (returning -1).
inline int gather(std::span<const std::span<const std::byte>> pieces, iovec (&iov)[4],
                  std::error_code& ec) noexcept {
    int count = 0;
    for (auto piece : pieces) {
        if (piece.empty())
            continue;
        if (count == 4) {
            ec = errc::invalid_argument;
            return -1;
        }
        iov[count++] = {const_cast<std::byte*>(piece.data()), piece.size()};
    }
    return count;
}

/// Calls `io` (a system call returning a count, or -1 with errno) again while it is
/// interrupted; returns the count, or 0 with ec set from errno.
template <class Io>
std::size_t retry_interrupted(Io&& io, std::error_code& ec) noexcept {
    for (;;) {
        ssize_t n = io();
        if (n >= 0) {
            ec.clear();
            return static_cast<std::size_t>(n);
        }
        if (errno != EINTR) {
            ec = errno_code(errno);
            return 0;
        }
    }
}

}  // namespace npipe::detail
