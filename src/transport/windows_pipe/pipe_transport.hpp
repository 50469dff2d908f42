// One connected end of a Windows named pipe (a server instance or a client's handle), behind
// core/transport.hpp. The handle is overlapped, so close() from another thread cancels a
// blocked read or write (CancelIoEx) instead of waiting for the peer.
//
// Message pipes are native Windows message pipes (PIPE_TYPE_MESSAGE, read in
// PIPE_READMODE_MESSAGE): each message on the wire is one WriteFile of its payload, exactly what
// a .NET or Win32 peer writes and reads. The core's message layer speaks frames
// (framing/frame.hpp), so this transport translates: send() writes each frame sequence as one
// message, receive() presents each ReadFile as one frame, whose "more" flag is ReadFile's
// ERROR_MORE_DATA (the rest of the message follows).
#pragma once

#include <windows.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "core/transport.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe::detail::win {

class pipe_transport final : public transport {
  public:
    /// Which end of what: a named pipe's server instance (its peer is a client), a client's
    /// handle, or an end of an anonymous pipe (no peer credentials; a handle that is not
    /// overlapped, so a blocked read ends only when the writer closes, as a FIFO's on Linux).
    enum class role { server, client, anonymous };

    /// `message`: a message pipe whose handle is in message read mode.
    pipe_transport(unique_handle pipe, role r, bool message);
    ~pipe_transport() override;

    bool keeps_boundaries() const noexcept override { return message_; }
    /// Message pipes: the coalescing buffer's size; longer messages come as several frames,
    /// which still leave as one native message.
    std::size_t max_send_size() const noexcept override;
    std::size_t receive_size() const noexcept override;
    std::size_t receive(std::span<std::byte> buffer, std::chrono::nanoseconds spin,
                        std::error_code& ec) noexcept override;
    std::size_t send(std::span<const std::span<const std::byte>> pieces,
                     std::error_code& ec) noexcept override;
    /// A Windows pipe has no half-close: a byte pipe's send side ends with an empty write (its
    /// reader reads 0 bytes: the end of the stream); a message pipe's is errc::not_supported
    /// (the handle stays open and the direction usable).
    bool shutdown(shutdown_how how, std::error_code& ec) noexcept override;
    void end() noexcept override;
    void close() noexcept override;
    peer_credentials peer(std::error_code& ec) const noexcept override;
    pipe_stream::native_handle_type native_handle() const noexcept override;

    bool native_message_pipe() const noexcept override { return message_; }

  private:
    /// One overlapped ReadFile or WriteFile, woken by end(): the Win32 error (0 on success,
    /// ERROR_MORE_DATA for a partial message) and the bytes moved.
    DWORD io(bool write, void* data, DWORD size, DWORD& done) noexcept;
    bool enter() noexcept;  ///< false once ended: no new I/O starts
    void leave() noexcept;  ///< the last one out after end() closes the handle
    std::size_t write_message(std::span<const std::byte> message, std::error_code& ec) noexcept;

    HANDLE pipe_;  ///< guarded by mutex_ for closing; I/O holds a use (users_)
    const role role_;
    const bool message_;
    unique_handle ended_event_;  ///< signalled by end(): every blocked I/O cancels itself
    mutable std::mutex mutex_;
    int users_ = 0;
    bool ended_ = false;
    std::vector<std::byte> pending_;  ///< a message's frames so far (the channel serialises sends)
    mutable std::once_flag peer_once_;
    mutable peer_credentials peer_;
    mutable std::error_code peer_error_;
};

}  // namespace npipe::detail::win
