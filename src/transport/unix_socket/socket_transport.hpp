// Transports over a connected AF_UNIX socket: SOCK_STREAM (byte-mode pipes, .NET's wire) and
// SOCK_SEQPACKET (message-mode pipes: each send is one record).
#pragma once

#include <atomic>
#include <cstddef>

#include "core/transport.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::detail {

/// The largest record a message-mode peer may send (docs/protocol.md): receivers size their
/// buffer for it, so a record is never truncated.
inline constexpr std::size_t max_seqpacket_record = 64 * 1024;

class socket_transport final : public transport {
  public:
    /// Over a connected socket; `records`: it is SOCK_SEQPACKET. `owned`: closed with the
    /// transport; otherwise someone else owns it (Asio's socket object, in npipe::asio).
    socket_transport(int fd, bool records, bool owned = true) noexcept;
    ~socket_transport() override;
    socket_transport(const socket_transport&) = delete;
    socket_transport& operator=(const socket_transport&) = delete;

    bool keeps_boundaries() const noexcept override { return records_; }
    std::size_t max_send_size() const noexcept override;
    std::size_t receive_size() const noexcept override;
    std::size_t receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                        std::error_code& ec) noexcept override;
    std::size_t send(std::span<const std::span<const std::byte>> pieces,
                     std::error_code& ec) noexcept override;
    bool shutdown(shutdown_how how, std::error_code& ec) noexcept override;
    void end() noexcept override;
    void close() noexcept override;
    peer_credentials peer(std::error_code& ec) const noexcept override;
    bool peer_shares_our_only_cpu() const noexcept override;
    pipe_stream::native_handle_type native_handle() const noexcept override {
        return fd_.load(std::memory_order_relaxed);
    }

  private:
    int fd() const noexcept { return fd_.load(std::memory_order_relaxed); }
    std::atomic<int> fd_;  ///< -1 once closed (possibly while another thread is in a call)
    bool owned_;
    bool records_;
    std::size_t send_size_;  ///< records: the largest record SO_SNDBUF lets us send
};

}  // namespace npipe::detail
