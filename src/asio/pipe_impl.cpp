#include "npipe/asio/detail/pipe_impl.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <utility>

#include "asio/instance_pool.hpp"
#include "core/pipe_state.hpp"
#include "framing/frame.hpp"
#include "framing/frame_decoder.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"
#include "platform/posix/local_socket.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::asio::detail {

using npipe::detail::frame_decoder;

/// The framing state of a connected message pipe. Received records are decoded straight from
/// a per-thread scratch buffer; only bytes a read could not take yet are kept here, so an idle
/// message pipe holds no buffer at all.
struct message_state {
    message_state(int fd, std::size_t max_message_size) noexcept
        : decoder(max_message_size), transport(fd) {}

    frame_decoder decoder;
    npipe::detail::seqpacket_transport transport;
    std::unique_ptr<std::byte[]> held;  ///< undecoded bytes of the last record
    std::size_t held_begin = 0, held_end = 0;
    std::error_code pending;  ///< an error found after bytes were returned (byte read mode)
    std::error_code failed;   ///< protocol_error: every later read reports it
    bool complete = true;
    bool eos = false;
    bool skip_current = false;  ///< a read cancelled inside this message gave it up

    void release_held() noexcept {
        held.reset();
        held_begin = held_end = 0;
    }
};

namespace {

/// One receive buffer per thread, as large as the largest record (max_seqpacket_record).
std::span<std::byte> scratch() {
    thread_local std::unique_ptr<std::byte[]> buffer;
    if (!buffer)
        buffer = std::make_unique_for_overwrite<std::byte[]>(npipe::detail::max_seqpacket_record);
    return {buffer.get(), npipe::detail::max_seqpacket_record};
}

}  // namespace

namespace {

/// The errno of a system error, from the standard library or from Asio (whose "asio.system"
/// category, in Asio 1.22, does not compare equal to std::errc conditions), or 0.
int system_errno(const std::error_code& ec) noexcept {
    if (ec.category() == std::system_category() ||
        ec.category() == ::asio::error::get_system_category())
        return ec.value();
    return 0;
}

}  // namespace

bool would_block(const std::error_code& ec) noexcept {
    int e = system_errno(ec);
    return e == EAGAIN || e == EWOULDBLOCK;
}

std::error_code check_read(const pipe_impl* impl) noexcept {
    if (!impl || !impl->is_open())
        return npipe::errc::not_connected;
    if (impl->direction == pipe_direction::out)
        return npipe::errc::wrong_direction;
    return {};
}

std::error_code check_write(const pipe_impl* impl) noexcept {
    if (!impl || !impl->is_open())
        return npipe::errc::not_connected;
    if (impl->direction == pipe_direction::in)
        return npipe::errc::wrong_direction;
    if (impl->write_broken)
        return npipe::errc::broken_pipe;
    return {};
}

pipe_impl::pipe_impl(const ::asio::any_io_executor& ex) : socket(ex) {}

pipe_impl::~pipe_impl() {
    close();
}

void pipe_impl::close() noexcept {
    ++close_generation;
    std::error_code ignored;
    socket.close(ignored);
    if (connecting) {
        connecting->timer.cancel();
        connecting->watch.close(ignored);
    }
    messages.reset();
    if (pool) {
        pool->release();
        pool.reset();
    }
}

void pipe_impl::cancel() noexcept {
    ++cancel_generation;
    std::error_code ignored;
    socket.cancel(ignored);
    if (connecting) {
        connecting->timer.cancel();
        connecting->watch.cancel(ignored);
    }
}

void pipe_impl::adopt(int fd, npipe::transmission_mode mode, std::error_code& ec) noexcept {
    npipe::detail::unique_fd owned(fd);
    relay_failure = nullptr;
    socket.assign(::asio::generic::stream_protocol(AF_UNIX, 0), fd, ec);
    if (ec)
        return;
    owned.release();
    // Non-blocking for our own sendmsg/recvmsg on message pipes; Asio's operations do not mind.
    socket.non_blocking(true, ec);
    if (ec) {
        std::error_code ignored;
        socket.close(ignored);
        return;
    }
    transmission = mode;
    transmission_known = true;
    write_broken = false;
    messages.reset();
    if (mode == npipe::transmission_mode::message) {
        messages.reset(new (std::nothrow) message_state(fd, max_message_size));
        if (!messages) {
            ec = std::make_error_code(std::errc::not_enough_memory);
            std::error_code ignored;
            socket.close(ignored);
        }
    }
}

std::error_code pipe_impl::read_error(const std::error_code& ec) noexcept {
    // A reset peer ends the stream for a reader, as in npipe::pipe_stream::read: everything it
    // sent was delivered before the reset was reported.
    if (system_errno(ec) == ECONNRESET || ec == ::asio::error::eof)
        return end_of_stream_error();
    return ec;
}

std::error_code pipe_impl::end_of_stream_error() const {
    if (relay_failure)
        if (auto failed = relay_failure())
            return failed;
    return ::asio::error::eof;
}

std::error_code pipe_impl::write_error(const std::error_code& ec) noexcept {
    if (int e = system_errno(ec); e == EPIPE || e == ECONNRESET) {
        write_broken = true;
        return npipe::errc::broken_pipe;
    }
    return ec;
}

io_step pipe_impl::read_message(payload_sink& sink, read_kind kind, read_progress& p,
                                std::error_code& ec) noexcept {
    auto& m = *messages;
    ec.clear();
    if (!p.started) {
        p.started = true;
        if (m.failed) {
            ec = m.failed;
            return io_step::done;
        }
        if (m.pending) {
            ec = std::exchange(m.pending, {});
            return io_step::done;
        }
    }
    const bool stop_at_end = kind != read_kind::bytes;
    const bool whole = kind == read_kind::whole_message;
    constexpr int max_receives_per_turn = 16;  // 1 MiB of records
    int receives = 0;
    std::span<const std::byte> input(m.held.get() + m.held_begin, m.held_end - m.held_begin);
    bool in_scratch = false;

    // Leaves the undecoded rest of the input for the next read. Bytes in the scratch buffer
    // must be copied out: the next read may run on another thread, or after another pipe's.
    auto leave = [&](io_step step) noexcept {
        if (!in_scratch) {
            m.held_begin = m.held_end - input.size();
            if (input.empty())
                m.release_held();
            return step;
        }
        if (input.empty())
            return step;
        m.held.reset(new (std::nothrow) std::byte[input.size()]);
        if (!m.held) {
            // The rest cannot be kept, so the stream cannot stay in step: fail it for good.
            m.held_begin = m.held_end = 0;
            m.failed = std::make_error_code(std::errc::not_enough_memory);
            if (!ec)
                ec = m.failed;
            return io_step::done;
        }
        std::copy(input.begin(), input.end(), m.held.get());
        m.held_begin = 0;
        m.held_end = input.size();
        return step;
    };

    for (;;) {
        bool need_input = false;
        while (!need_input) {
            const bool discarding = p.overflow || m.skip_current;
            const std::size_t room = discarding ? npipe::detail::max_frame_payload : sink.room();
            auto r = m.decoder.next(input, room);
            input = input.subspan(r.consumed);
            switch (r.what) {
                case frame_decoder::event::payload:
                    if (discarding)
                        break;
                    if (r.payload.empty()) {  // no room left, and the message goes on
                        if (whole) {
                            p.overflow = true;  // skip the rest, then report it
                            break;
                        }
                        return leave(io_step::done);
                    }
                    if (!sink.put(r.payload)) {
                        p.overflow = true;  // a dynamic buffer that cannot grow
                        if (!whole) {
                            ec = std::make_error_code(std::errc::not_enough_memory);
                            return leave(io_step::done);
                        }
                        break;
                    }
                    p.n += r.payload.size();
                    m.complete = false;
                    break;
                case frame_decoder::event::message_end:
                    m.complete = true;
                    if (m.skip_current) {
                        m.skip_current = false;
                        break;
                    }
                    if (stop_at_end) {
                        if (p.overflow)
                            ec = npipe::errc::message_too_large;
                        return leave(io_step::done);
                    }
                    break;
                case frame_decoder::event::message_too_large:
                    m.complete = true;
                    if (m.skip_current) {
                        m.skip_current = false;
                        break;
                    }
                    if (stop_at_end || p.n == 0) {
                        ec = npipe::errc::message_too_large;
                        return leave(io_step::done);
                    }
                    m.pending = npipe::errc::message_too_large;  // after the bytes before it
                    return leave(io_step::done);
                case frame_decoder::event::need_input:
                    need_input = true;
                    break;
            }
        }
        // Everything received so far is decoded.
        if (p.n > 0 &&
            (kind == read_kind::bytes || (kind == read_kind::message_part && sink.room() == 0)))
            return leave(io_step::done);
        // A message may cost a turn only so much: a peer streaming frames that never finish a
        // message (empty continuation frames, say) must not keep other pipes from their turn.
        if (++receives > max_receives_per_turn)
            return leave(io_step::yield);
        m.release_held();
        auto buffer = scratch();
        std::error_code rec;
        std::size_t got = m.transport.receive(buffer, rec);
        if (rec) {
            if (would_block(rec))
                return io_step::would_block;
            if (rec == npipe::errc::protocol_error)
                m.failed = rec;
            ec = rec;
            return io_step::done;
        }
        if (got == 0) {
            if (stop_at_end && m.decoder.in_message()) {
                // The peer ended inside a message: it is torn, so none of it counts.
                m.decoder.reset();
                m.complete = true;
                m.skip_current = false;
                ec = npipe::errc::broken_pipe;
                return io_step::done;
            }
            m.eos = true;
            if (p.n == 0)
                ec = end_of_stream_error();
            return io_step::done;
        }
        input = buffer.first(got);
        in_scratch = true;
    }
}

void pipe_impl::abandon_read(const read_progress&) noexcept {
    if (messages && messages->decoder.in_message())
        messages->skip_current = true;
}

io_step pipe_impl::write_message(std::span<const ::asio::const_buffer> message, std::size_t total,
                                 write_progress& p, std::error_code& ec) noexcept {
    ec.clear();
    if (write_broken) {
        ec = npipe::errc::broken_pipe;
        return io_step::done;
    }
    auto& m = *messages;
    const std::size_t max_payload =
        std::min(m.transport.max_send_size() - npipe::detail::frame_header_size,
                 npipe::detail::max_frame_payload);
    while (!p.final_sent) {
        // One record: a frame header and up to three pieces of the caller's buffers (the
        // transport gathers at most four), the payload cut at the record's limit.
        std::span<const std::byte> pieces[4];
        std::size_t count = 1, size = 0, skip = p.offset;
        for (const auto& b : message) {
            if (count == std::size(pieces) || size == max_payload)
                break;
            if (skip >= b.size()) {
                skip -= b.size();
                continue;
            }
            std::size_t n = std::min(b.size() - skip, max_payload - size);
            pieces[count++] = {static_cast<const std::byte*>(b.data()) + skip, n};
            size += n;
            skip = 0;
        }
        const bool more = p.offset + size < total;
        const auto header =
            npipe::detail::encode_frame_header(static_cast<std::uint32_t>(size), more);
        pieces[0] = header;
        std::error_code sec;
        m.transport.send(std::span<const std::span<const std::byte>>(pieces, count), sec);
        if (sec) {
            if (would_block(sec))
                return io_step::would_block;
            if (sec == npipe::errc::broken_pipe)
                write_broken = true;
            ec = sec;
            return io_step::done;
        }
        p.started = true;
        p.offset += size;
        p.final_sent = !more;
    }
    return io_step::done;
}

void pipe_impl::abandon_write(const write_progress& p) noexcept {
    if (p.started && !p.final_sent && socket.is_open()) {
        ::shutdown(socket.native_handle(), SHUT_WR);
        write_broken = true;
    }
}

bool pipe_impl::is_message_complete() const noexcept {
    return !messages || messages->complete;
}

bool pipe_impl::end_of_stream() const noexcept {
    return messages && messages->eos;
}

}  // namespace npipe::asio::detail

namespace npipe::asio {

std::size_t pipe_stream::available() const {
    std::error_code ec;
    auto n = available(ec);
    npipe::detail::throw_if(ec, pipe_name(), "available");
    return n;
}

std::size_t pipe_stream::available(std::error_code& ec) const noexcept {
    if (!is_open()) {
        ec = npipe::errc::not_connected;
        return 0;
    }
    if (impl_->transmission == npipe::transmission_mode::message) {
        ec = npipe::errc::not_supported;
        return 0;
    }
    return impl_->socket.available(ec);
}

void pipe_stream::shutdown_write() {
    if (!is_open())
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(),
                                "shut down the write side");
    if (impl_->direction == pipe_direction::in)
        return;  // nothing more can reach the peer anyway
    std::error_code ec;
    impl_->socket.shutdown(::asio::socket_base::shutdown_send, ec);
    npipe::detail::throw_if(ec, pipe_name(), "shut down the write side");
    impl_->direction = pipe_direction::in;
}

npipe::transmission_mode pipe_stream::transmission_mode() const {
    if (!impl_ || !impl_->transmission_known)
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "transmission mode");
    return impl_->transmission;
}

npipe::transmission_mode pipe_stream::read_mode() const noexcept {
    return impl_ ? impl_->read_mode : npipe::transmission_mode::byte;
}

void pipe_stream::set_read_mode(npipe::transmission_mode mode) {
    if (mode == npipe::transmission_mode::message) {
        if (!impl_ || !impl_->transmission_known)
            npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "set read mode");
        if (impl_->transmission != npipe::transmission_mode::message)
            npipe::detail::throw_if(npipe::errc::not_supported, pipe_name(),
                                    "set message read mode on a byte pipe");
    }
    if (impl_)
        impl_->read_mode = mode;
}

peer_credentials pipe_stream::get_peer_credentials() const {
    if (!is_open())
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "get peer credentials");
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(impl_->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        npipe::detail::throw_if(npipe::detail::errno_code(errno), pipe_name(),
                                "get peer credentials");
    return {cred.uid, cred.gid, cred.pid};
}

pipe_stream::native_handle_type pipe_stream::native_handle() const noexcept {
    return is_open() ? impl_->socket.native_handle() : -1;
}

const std::string& pipe_stream::pipe_name() const noexcept {
    static const std::string none;
    return impl_ ? impl_->name : none;
}

}  // namespace npipe::asio
