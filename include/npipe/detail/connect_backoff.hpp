// npipe/detail/connect_backoff.hpp: how long a client waiting for its server sleeps between
// attempts, shared by npipe::named_pipe_client and npipe::asio::named_pipe_client. Not part of
// the public API.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>

namespace npipe::detail {

/// The delays between a waiting client's attempts: from `first`, doubled after every wait that
/// ended with nothing new, up to a cap; back to `first` when the endpoint's directory changed (a
/// server may just have appeared).
class connect_backoff {
  public:
    using clock = std::chrono::steady_clock;

    /// A local pipe: 1 ms doubling to 100 ms (the directory watch usually wakes the client).
    static connect_backoff local() noexcept {
        return {std::chrono::milliseconds(1), std::chrono::milliseconds(100)};
    }
    /// A remote pipe: each attempt is a new TLS connection, so the backoff starts where a local
    /// wait's ends (20 ms doubling to 500 ms): a gateway sees a few requests a second.
    static connect_backoff remote() noexcept {
        return {std::chrono::milliseconds(20), std::chrono::milliseconds(500)};
    }

    /// When the next wait ends: now + the delay, but never after the deadline.
    clock::time_point next_until(std::optional<clock::time_point> deadline) const noexcept {
        auto until = clock::now() + delay_;
        return deadline ? std::min(until, *deadline) : until;
    }
    /// Something changed where the server appears: the next wait is short again.
    void changed() noexcept { delay_ = first_; }
    /// A wait ended with nothing new: the next one is twice as long (up to the cap).
    void waited() noexcept { delay_ = std::min(delay_ * 2, longest_); }

  private:
    connect_backoff(std::chrono::milliseconds first, std::chrono::milliseconds longest) noexcept
        : first_(first), longest_(longest), delay_(first) {}
    std::chrono::milliseconds first_, longest_, delay_;
};

}  // namespace npipe::detail
