// The shared-memory transport (docs/protocol.md, "Shared memory"): two npipe ends that both
// opted in (pipe_options::shared_memory) move bytes through two rings in a memfd both map, and
// touch the kernel only to sleep and to wake each other. Each end has two bell sockets: a
// reader that must wait sleeps in poll(2) on its receive bell, a writer waiting for room on its
// send bell, and the peer rings one by sending a byte when the shared flags say someone sleeps.
// The bells are the liveness channel too: a peer that exits or is killed closes them, which
// wakes whoever sleeps here (end of stream, broken pipe). With the bells non-blocking (npipe::asio
// registers both with its reactor), a read or write that would sleep fails with EAGAIN instead:
// the receive bell turning readable means bytes (or the end), the send bell room.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

#include "core/transport.hpp"
#include "platform/posix/unique_fd.hpp"
#include "transport/posix_shared_memory/shm_ring.hpp"

namespace npipe::detail {

class shm_transport final : public transport {
  public:
    /// Client: over `connection` (connected to the server's rendezvous, already checked),
    /// creates the sealed memfd with rings of `ring_size` bytes and a bell socket pair, and
    /// sends the hello with both (SCM_RIGHTS). Fails with invalid_argument for a bad size.
    static std::shared_ptr<transport> connect(unique_fd connection, std::size_t ring_size,
                                              std::error_code& ec) noexcept;

    /// Server: takes the hello the client sent on `connection`, without waiting for it,
    /// validates it, the memfd (size, seals) and the bell socket, and maps the rings; the
    /// transport then owns `connection`. No hello yet: std::errc::operation_would_block and
    /// `connection` is left as it was (wait for it to become readable). Any deviation is
    /// errc::protocol_error.
    static std::shared_ptr<transport> accept(unique_fd& connection, std::error_code& ec) noexcept;

    ~shm_transport() override;
    shm_transport(const shm_transport&) = delete;
    shm_transport& operator=(const shm_transport&) = delete;

    bool keeps_boundaries() const noexcept override { return false; }
    /// Message pipes: frames and coalesced sends of up to 64 KiB, and receives into 64 KiB
    /// buffers, as on the socket (any sizes work on a stream: these keep the framing's buffers
    /// bounded, and a receive takes everything the writer published at once).
    std::size_t max_send_size() const noexcept override { return framing_unit; }
    std::size_t receive_size() const noexcept override { return framing_unit; }
    static constexpr std::size_t framing_unit = 64 * 1024;
    std::size_t receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                        std::error_code& ec) noexcept override;
    std::size_t send(std::span<const std::span<const std::byte>> pieces,
                     std::error_code& ec) noexcept override;
    bool shutdown(shutdown_how how, std::error_code& ec) noexcept override;
    void end() noexcept override;
    void close() noexcept override;
    peer_credentials peer(std::error_code& ec) const noexcept override;
    bool handle_shows_data() const noexcept override { return false; }
    std::size_t available() const noexcept override;
    bool prepare_receive_wait() noexcept override;
    /// The receive bell: readable when the peer rang it or went away (the rings can hold bytes
    /// without it being readable: it is not a readiness handle for data).
    pipe_stream::native_handle_type native_handle() const noexcept override {
        return receive_bell_.load(std::memory_order_relaxed);
    }
    /// The send bell: readable when the peer's reader freed room (or the peer went away).
    send_wait send_wait_handle() const noexcept override {
        return {send_bell_.load(std::memory_order_relaxed), true};
    }

    /// Internal: use connect() and accept().
    shm_transport(unique_fd receive_bell, unique_fd send_bell, bool server, void* mapping,
                  std::size_t mapping_size, const std::uint64_t (&ring_sizes)[2]) noexcept;

  private:
    /// Sleeps until the bell rings (or reports EAGAIN on a non-blocking bell), then drains it.
    bool wait_bell(std::atomic<int>& bell, std::atomic<bool>& hung_up,
                   std::error_code& ec) noexcept;
    enum class drained { empty, rung, failed };
    static drained drain_bell(int fd, std::atomic<bool>& hung_up, std::error_code& ec) noexcept;
    void ring(const std::atomic<int>& bell, std::atomic<bool>& hung_up) noexcept;
    void corrupted(std::error_code& ec) noexcept;
    /// Whether a read or write may go on (ec says why not: corrupt, or closed).
    bool usable(const std::atomic<int>& bell, std::error_code& ec) const noexcept;

    std::atomic<int> receive_bell_, send_bell_;
    bool server_;  ///< the connection (SO_PEERCRED) is the receive bell on a server, else send
    void* mapping_;
    std::size_t mapping_size_;
    shm::ring_reader in_;   ///< guarded by read_mutex_
    shm::ring_writer out_;  ///< guarded by write_mutex_
    mutable std::mutex read_mutex_;
    std::mutex write_mutex_;
    std::atomic<bool> receive_hung_up_{false}, send_hung_up_{false};
    std::atomic<bool> receive_shut_{false}, send_shut_{false}, ended_{false}, corrupt_{false};
};

}  // namespace npipe::detail
