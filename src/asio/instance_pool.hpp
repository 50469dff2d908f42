// The max_instances quota of an acceptor, shared with the pipes it accepted: a pipe gives its
// slot back when it is closed or destroyed, on whatever thread that happens, and the eventfd
// wakes an accept waiting for a slot through the reactor.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>

#include "npipe/errors.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::asio::detail {

class instance_pool {
  public:
    /// Throws pipe_error when the eventfd cannot be created.
    explicit instance_pool(int max, const std::string& pipe_name) : max_(max) {
        wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake_)
            throw pipe_error({errno, std::system_category()}, pipe_name,
                             "create server: create the instance wake-up eventfd");
    }

    bool try_acquire() noexcept {
        std::lock_guard lock(mutex_);
        if (live_ >= max_)
            return false;
        ++live_;
        return true;
    }

    void release() noexcept {
        {
            std::lock_guard lock(mutex_);
            --live_;
        }
        std::uint64_t one = 1;
        // Cannot fail short of the counter overflowing 2^64-2, which would take centuries.
        [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
    }

    /// Consumes the pending wake-ups (the eventfd is non-blocking).
    void drain() noexcept {
        std::uint64_t value = 0;
        [[maybe_unused]] auto n = ::read(wake_.get(), &value, sizeof value);
    }

    int wake_fd() const noexcept { return wake_.get(); }

  private:
    std::mutex mutex_;
    int max_;
    int live_ = 0;
    npipe::detail::unique_fd wake_;
};

}  // namespace npipe::asio::detail
