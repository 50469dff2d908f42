// The POSIX side of the core's waits (core/platform.hpp): an eventfd to wake them, poll(2).
#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "core/platform.hpp"
#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::detail {

namespace platform {

wake_event::wake_event() : handle_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (handle_ < 0)
        throw std::system_error(errno_code(errno), "create wake-up eventfd");
}

wake_event::~wake_event() {
    unique_fd closing(handle_);
}

void wake_event::signal() noexcept {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(handle_, &one, sizeof one);
}

void wake_event::clear() noexcept {
    std::uint64_t value = 0;
    [[maybe_unused]] auto n = ::read(handle_, &value, sizeof value);
}

namespace {

int poll_timeout_ms(std::optional<std::chrono::steady_clock::time_point> deadline) {
    if (!deadline)
        return -1;
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
}

}  // namespace

wait_result wait(const wake_event& wake, handle h,
                 std::optional<std::chrono::steady_clock::time_point> deadline,
                 std::error_code& ec) noexcept {
    ec.clear();
    for (;;) {
        pollfd fds[2] = {{wake.native(), POLLIN, 0}, {h, POLLIN, 0}};
        int n = ::poll(fds, h >= 0 ? 2 : 1, poll_timeout_ms(deadline));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ec = errno_code(errno);
            return wait_result::ready;
        }
        if (fds[0].revents)
            return wait_result::woken;
        if (h >= 0 && fds[1].revents)
            return wait_result::ready;
        if (deadline && std::chrono::steady_clock::now() >= *deadline)
            return wait_result::timed_out;
    }
}

unsigned online_cpus() noexcept {
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<unsigned>(n) : 1;
}

}  // namespace platform

std::error_code errno_code(int error) noexcept {
    switch (error) {
        case EPIPE:
        case ECONNRESET:
            return errc::broken_pipe;
        case EACCES:
        case EPERM:
            return errc::access_denied;
        case ETIMEDOUT:
            return errc::timed_out;
        case ENAMETOOLONG:
            return errc::path_too_long;
        case ENOTSOCK:
            return errc::not_a_socket;
        case EPROTOTYPE:
            return errc::protocol_error;
        default:
            return {error, std::system_category()};
    }
}

}  // namespace npipe::detail
