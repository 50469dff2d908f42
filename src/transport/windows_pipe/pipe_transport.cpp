#include "transport/windows_pipe/pipe_transport.hpp"

#include <aclapi.h>

#include <algorithm>
#include <cstring>

#include "framing/frame.hpp"
#include "npipe/errors.hpp"

namespace npipe::detail::win {

namespace {

// A ReadFile of a message pipe takes at most this much: a longer message arrives as several
// frames (ERROR_MORE_DATA), so the reader's buffer stays small.
constexpr std::size_t message_chunk = std::size_t{64} << 10;

// One event per thread for its overlapped calls: a thread waits on one operation at a time,
// and ReadFile/WriteFile reset the event when they start.
struct thread_event {
    unique_handle event{::CreateEventW(nullptr, TRUE, FALSE, nullptr)};
};
thread_local thread_event io_event;

bool is_end_of_stream(DWORD error) noexcept {
    return error == ERROR_BROKEN_PIPE || error == ERROR_PIPE_NOT_CONNECTED ||
           error == ERROR_NO_DATA || error == ERROR_OPERATION_ABORTED;
}

// Copies bytes out of a sequence of pieces, front to back.
class piece_cursor {
  public:
    explicit piece_cursor(std::span<const std::span<const std::byte>> pieces) : pieces_(pieces) {
        for (auto p : pieces)
            left_ += p.size();
    }
    std::size_t left() const noexcept { return left_; }
    /// The next n bytes if they lie in one piece (empty otherwise); consumed when returned.
    std::span<const std::byte> contiguous(std::size_t n) noexcept {
        skip_empty();
        if (i_ < pieces_.size() && pieces_[i_].size() - off_ >= n) {
            auto s = pieces_[i_].subspan(off_, n);
            off_ += n;
            left_ -= n;
            return s;
        }
        return {};
    }
    void copy(std::byte* out, std::size_t n) noexcept {
        while (n > 0) {
            skip_empty();
            auto take = std::min(n, pieces_[i_].size() - off_);
            std::memcpy(out, pieces_[i_].data() + off_, take);
            out += take;
            off_ += take;
            left_ -= take;
            n -= take;
        }
    }

  private:
    void skip_empty() noexcept {
        while (i_ < pieces_.size() && off_ == pieces_[i_].size()) {
            ++i_;
            off_ = 0;
        }
    }
    std::span<const std::span<const std::byte>> pieces_;
    std::size_t i_ = 0, off_ = 0, left_ = 0;
};

}  // namespace

pipe_transport::pipe_transport(unique_handle pipe, role r, bool message)
    : pipe_(pipe.release()),
      role_(r),
      message_(message),
      ended_event_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)) {
    if (!ended_event_) {
        ::CloseHandle(pipe_);
        throw std::system_error(last_error(), "create the pipe's wake-up event");
    }
}

pipe_transport::~pipe_transport() {
    close();
}

std::size_t pipe_transport::max_send_size() const noexcept {
    return message_ ? message_chunk + frame_header_size : transport::max_send_size();
}

std::size_t pipe_transport::receive_size() const noexcept {
    return message_ ? message_chunk + frame_header_size : 1;
}

bool pipe_transport::enter() noexcept {
    std::lock_guard lock(mutex_);
    if (ended_ || !pipe_)
        return false;
    ++users_;
    return true;
}

void pipe_transport::leave() noexcept {
    std::lock_guard lock(mutex_);
    if (--users_ == 0 && ended_ && pipe_) {
        ::CloseHandle(pipe_);
        pipe_ = nullptr;
    }
}

DWORD pipe_transport::io(bool write, void* data, DWORD size, DWORD& done) noexcept {
    done = 0;
    HANDLE event = io_event.event.get();
    if (!event)
        return ERROR_NOT_ENOUGH_MEMORY;
    OVERLAPPED ov{};
    ov.hEvent = event;
    BOOL ok = write ? ::WriteFile(pipe_, data, size, nullptr, &ov)
                    : ::ReadFile(pipe_, data, size, nullptr, &ov);
    DWORD error = ok ? 0 : ::GetLastError();
    if (error == ERROR_IO_PENDING) {
        HANDLE waits[2] = {event, ended_event_.get()};
        if (::WaitForMultipleObjects(2, waits, FALSE, INFINITE) != WAIT_OBJECT_0)
            ::CancelIoEx(pipe_, &ov);  // end(): give up; the result below says how it ended
        ok = ::GetOverlappedResult(pipe_, &ov, &done, TRUE);
        return ok ? 0 : ::GetLastError();
    }
    if (ok || error == ERROR_MORE_DATA)
        done = static_cast<DWORD>(ov.InternalHigh);
    return error;
}

std::size_t pipe_transport::receive(std::span<std::byte> buffer, std::chrono::nanoseconds,
                                    std::error_code& ec) noexcept {
    ec.clear();
    if (buffer.empty())
        return 0;
    if (message_ && buffer.size() <= frame_header_size) {
        ec = errc::protocol_error;  // receive_size() is what a message read must offer
        return 0;
    }
    if (!enter())
        return 0;  // ended: end of stream, as a closed socket reads
    std::size_t result = 0;
    for (;;) {
        DWORD done = 0, error;
        if (message_) {
            auto room = std::min(buffer.size() - frame_header_size, message_chunk);
            error = io(false, buffer.data() + frame_header_size, static_cast<DWORD>(room), done);
            if (error == 0 || error == ERROR_MORE_DATA) {
                auto header = encode_frame_header(done, error == ERROR_MORE_DATA);
                std::memcpy(buffer.data(), header.data(), header.size());
                result = done + frame_header_size;
                break;
            }
        } else {
            auto room = std::min<std::size_t>(buffer.size(), MAXDWORD);
            error = io(false, buffer.data(), static_cast<DWORD>(room), done);
            // A peer's empty write is its half-close (shutdown() below): the end of its data,
            // as a .NET or Win32 reader also takes a read of 0 bytes.
            if (error == 0) {
                result = done;
                break;
            }
        }
        if (!is_end_of_stream(error))
            ec = win_code(error);
        break;
    }
    leave();
    return result;
}

std::size_t pipe_transport::write_message(std::span<const std::byte> message,
                                          std::error_code& ec) noexcept {
    if (message.size() > MAXDWORD) {
        ec = errc::message_too_large;  // one WriteFile is one message, and takes a DWORD
        return 0;
    }
    DWORD done = 0;
    DWORD error =
        io(true, const_cast<std::byte*>(message.data()), static_cast<DWORD>(message.size()), done);
    if (error != 0) {
        ec = is_end_of_stream(error) ? std::error_code(errc::broken_pipe) : win_code(error);
        return 0;
    }
    return done;
}

std::size_t pipe_transport::send(std::span<const std::span<const std::byte>> pieces,
                                 std::error_code& ec) noexcept {
    ec.clear();
    if (!enter()) {
        ec = errc::broken_pipe;
        return 0;
    }
    if (!message_) {
        // A byte pipe: an overlapped WriteFile returns once all of it is in the pipe.
        std::size_t sent = 0;
        for (auto piece : pieces) {
            while (!piece.empty() && !ec) {
                auto n =
                    write_message(piece.first(std::min<std::size_t>(piece.size(), 1u << 30)), ec);
                if (n == 0)
                    break;
                sent += n;
                piece = piece.subspan(n);
            }
        }
        leave();
        return sent;
    }
    // A message pipe: the pieces hold whole frames; a message's frames leave as one WriteFile.
    piece_cursor in(pieces);
    const std::size_t total = in.left();
    while (in.left() > 0 && !ec) {
        if (in.left() < frame_header_size) {
            ec = errc::protocol_error;
            break;
        }
        frame_header header;
        in.copy(header.data(), header.size());
        auto value = decode_frame_header(header.data());
        std::size_t length = value & frame_length_mask;
        bool more = (value & frame_more_flag) != 0;
        if (in.left() < length) {
            ec = errc::protocol_error;
            break;
        }
        if (!more && pending_.empty()) {
            if (auto direct = in.contiguous(length); direct.size() == length || length == 0) {
                write_message(direct, ec);
                continue;
            }
        }
        try {
            auto old = pending_.size();
            pending_.resize(old + length);
            in.copy(pending_.data() + old, length);
        } catch (const std::bad_alloc&) {
            ec = std::make_error_code(std::errc::not_enough_memory);
            pending_.clear();
            break;
        }
        if (!more) {
            write_message(pending_, ec);
            pending_.clear();
        }
    }
    leave();
    return ec ? 0 : total;
}

bool pipe_transport::shutdown(shutdown_how how, std::error_code& ec) noexcept {
    ec.clear();
    if (how == shutdown_how::receive)
        return true;
    // A Windows pipe has no half-close. A byte pipe stands in with an empty write: its reader's
    // ReadFile returns 0 bytes, which npipe, .NET and C programs all read as the end of the
    // stream, and the other direction stays open. In a message pipe an empty write is an
    // empty message, so there is no such stand-in.
    if (message_ || how == shutdown_how::both) {
        ec = errc::not_supported;
        return true;
    }
    if (!enter()) {
        ec = errc::broken_pipe;
        return true;
    }
    DWORD done = 0;
    DWORD error = io(true, nullptr, 0, done);
    leave();
    if (error != 0)
        ec = is_end_of_stream(error) ? std::error_code(errc::broken_pipe) : win_code(error);
    return true;
}

void pipe_transport::end() noexcept {
    std::lock_guard lock(mutex_);
    if (ended_)
        return;
    ended_ = true;
    ::SetEvent(ended_event_.get());
    // No new I/O starts now; I/O in progress wakes on the event and cancels itself, and the
    // last one out closes the handle, so the peer sees the end at once and no thread meets a
    // reused handle value.
    if (users_ == 0 && pipe_) {
        ::CloseHandle(pipe_);
        pipe_ = nullptr;
    }
}

void pipe_transport::close() noexcept {
    end();
}

peer_credentials pipe_transport::peer(std::error_code& ec) const noexcept {
    std::call_once(peer_once_, [this] {
        std::lock_guard lock(mutex_);
        if (role_ == role::anonymous) {
            peer_error_ = errc::not_supported;
            return;
        }
        if (!pipe_) {
            peer_error_ = errc::not_connected;
            return;
        }
        const bool server = role_ == role::server;
        ULONG pid = 0;
        BOOL ok = server ? ::GetNamedPipeClientProcessId(pipe_, &pid)
                         : ::GetNamedPipeServerProcessId(pipe_, &pid);
        if (!ok) {
            peer_error_ = last_error();
            return;
        }
        peer_.pid = static_cast<process_id>(pid);
        sid_bytes user;
        try {
            if (server) {
                // The client's identity as the pipe carries it (the client connects with
                // SECURITY_IDENTIFICATION): impersonate only long enough to read the token.
                if (::ImpersonateNamedPipeClient(pipe_)) {
                    HANDLE token = nullptr;
                    if (::OpenThreadToken(::GetCurrentThread(), TOKEN_QUERY, TRUE, &token)) {
                        unique_handle owned(token);
                        user = token_user(token);
                    }
                    ::RevertToSelf();
                }
            } else {
                // The server's identity: the owner of the pipe object it created.
                PSID owner = nullptr;
                PSECURITY_DESCRIPTOR sd = nullptr;
                if (::GetSecurityInfo(pipe_, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner,
                                      nullptr, nullptr, nullptr, &sd) == ERROR_SUCCESS) {
                    if (owner && ::IsValidSid(owner)) {
                        auto* first = static_cast<BYTE*>(owner);
                        user.assign(first, first + ::GetLengthSid(owner));
                    }
                    ::LocalFree(sd);
                }
            }
            if (user.empty() && !server) {
                // No owner in the pipe's security descriptor (Wine gives a default descriptor
                // none): the user of the server's process, whose id the pipe reported.
                unique_handle process(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
                HANDLE token = nullptr;
                if (process && ::OpenProcessToken(process.get(), TOKEN_QUERY, &token)) {
                    unique_handle owned(token);
                    user = token_user(token);
                }
            }
            peer_.uid = intern_sid(user);
        } catch (const std::bad_alloc&) {
            peer_error_ = std::make_error_code(std::errc::not_enough_memory);
        }
    });
    ec = peer_error_;
    return peer_;
}

pipe_stream::native_handle_type pipe_transport::native_handle() const noexcept {
    std::lock_guard lock(mutex_);
    return ended_ ? nullptr : pipe_;
}

}  // namespace npipe::detail::win
