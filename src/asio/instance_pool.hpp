// The max_instances quota of an acceptor, shared with the pipes it accepted: a pipe gives its
// slot back when it is closed or destroyed, on whatever thread that happens, and the platform's
// wake-up event wakes an accept waiting for a slot through the reactor.
#pragma once

#include <mutex>

#include "core/platform.hpp"

namespace npipe::asio::detail {

class instance_pool {
  public:
    /// Throws std::system_error when the wake-up event cannot be created.
    explicit instance_pool(int max) : max_(max) {}

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
        wake_.signal();
    }

    /// Consumes the pending wake-ups.
    void drain() noexcept { wake_.clear(); }

    npipe::detail::platform::handle wake_handle() const noexcept { return wake_.native(); }

  private:
    std::mutex mutex_;
    int max_;
    int live_ = 0;
    npipe::detail::platform::wake_event wake_;
};

}  // namespace npipe::asio::detail
