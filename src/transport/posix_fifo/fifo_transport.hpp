// The transport over one end of a kernel pipe (FIFO): anonymous pipes. One direction only, no
// record boundaries, no peer identity, and no shutdown short of closing.
#pragma once

#include <atomic>

#include "core/transport.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::detail {

class fifo_transport final : public transport {
  public:
    explicit fifo_transport(unique_fd fd) noexcept;
    ~fifo_transport() override;

    bool keeps_boundaries() const noexcept override { return false; }
    std::size_t receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                        std::error_code& ec) noexcept override;
    std::size_t send(std::span<const std::span<const std::byte>> pieces,
                     std::error_code& ec) noexcept override;
    bool shutdown(shutdown_how how, std::error_code& ec) noexcept override;
    void end() noexcept override;
    void close() noexcept override { end(); }
    peer_credentials peer(std::error_code& ec) const noexcept override;
    pipe_stream::native_handle_type native_handle() const noexcept override {
        return fd_.load(std::memory_order_relaxed);
    }

  private:
    /// Closed by end() or shutdown() possibly while another thread reads: hence atomic.
    std::atomic<int> fd_;
};

}  // namespace npipe::detail
