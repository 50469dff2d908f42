// The pieces of a transport's send() as the iovec array of writev/sendmsg.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <system_error>

#include "npipe/errors.hpp"

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

}  // namespace npipe::detail
