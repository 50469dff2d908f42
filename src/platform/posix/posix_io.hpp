// Small pieces every POSIX transport needs: the iovec array of a send, the EINTR retry, and
// writes to a pipe that never raise SIGPIPE.
#pragma once

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <system_error>

#include "core/transport.hpp"
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
            clear_error(ec);
            return static_cast<std::size_t>(n);
        }
        if (errno != EINTR) {
            ec = errno_code(errno);
            return 0;
        }
    }
}

/// While alive, SIGPIPE is blocked for this thread (and the threads it starts), so a write to a
/// pipe whose reader has gone fails with EPIPE instead of killing the process. On the way out
/// it swallows a SIGPIPE that became pending meanwhile (raised by our writes), leaving one that
/// was already pending for another reason alone, and restores the thread's mask.
class sigpipe_blocked {
  public:
    sigpipe_blocked() noexcept {
        sigemptyset(&sigpipe_);
        sigaddset(&sigpipe_, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &sigpipe_, &old_mask_);
    }
    ~sigpipe_blocked() {
        int saved = errno;
        sigset_t pending;
        if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
            timespec no_wait{0, 0};
            while (sigtimedwait(&sigpipe_, nullptr, &no_wait) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
        errno = saved;
    }
    sigpipe_blocked(const sigpipe_blocked&) = delete;
    sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

  private:
    sigset_t sigpipe_, old_mask_;
    bool was_pending_ = false;
};

}  // namespace npipe::detail
