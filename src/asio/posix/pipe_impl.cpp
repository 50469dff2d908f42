#include "npipe/asio/detail/pipe_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <new>
#include <utility>

#include "asio/instance_pool.hpp"
#include "core/named_pipe_rules.hpp"
#include "core/pipe_state.hpp"
#include "core/platform.hpp"
#include "core/transport.hpp"
#include "framing/frame.hpp"
#include "framing/message_reader.hpp"
#include "npipe/asio/pipe_stream.hpp"
#include "npipe/errors.hpp"

namespace npipe::asio::detail {

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

connector::connector(const ::asio::any_io_executor& ex) : timer(ex), watch(ex) {}

connector::~connector() = default;

pipe_impl::pipe_impl(const ::asio::any_io_executor& ex) : socket(ex), send_bell(ex) {}

pipe_impl::~pipe_impl() {
    close();
}

void pipe_impl::close() noexcept {
    ++close_generation;
    std::error_code ignored;
    // The reactor lets go of the handle (pending waits complete with operation_aborted), then
    // the transport closes it.
    if (socket.is_open())
        socket.release(ignored);
    if (send_bell.is_open())
        send_bell.release(ignored);
    if (transport)
        transport->close();
    if (connecting) {
        connecting->timer.cancel();
        stop_watch();
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
    send_bell.cancel(ignored);
    if (connecting) {
        connecting->timer.cancel();
        connecting->watch.cancel(ignored);
    }
}

void pipe_impl::adopt(std::shared_ptr<npipe::detail::transport> connection,
                      npipe::transmission_mode mode, std::error_code& ec) noexcept {
    npipe::detail::apply_direction(*connection, direction);
    socket.assign(::asio::generic::stream_protocol(AF_UNIX, 0), connection->native_handle(), ec);
    if (ec) {
        connection->close();
        return;
    }
    // Non-blocking: the transport's calls then report EAGAIN instead of blocking the executor.
    socket.non_blocking(true, ec);
    // A transport whose writers wait on a handle of their own (shared memory's send bell): the
    // reactor waits on it too, so no thread ever sleeps in the transport.
    const auto send_wait = connection->send_wait_handle();
    if (!ec && send_wait.handle != connection->native_handle()) {
        send_bell.assign(::asio::generic::stream_protocol(AF_UNIX, 0), send_wait.handle, ec);
        if (!ec)
            send_bell.non_blocking(true, ec);
    }
    if (!ec && mode == npipe::transmission_mode::message) {
        messages.reset(new (std::nothrow) npipe::detail::message_reader(max_message_size));
        if (!messages)
            ec = std::make_error_code(std::errc::not_enough_memory);
    }
    if (ec) {
        std::error_code ignored;
        socket.release(ignored);
        if (send_bell.is_open())
            send_bell.release(ignored);
        connection->close();
        messages.reset();
        return;
    }
    transport = std::move(connection);
    transmission = mode;
    transmission_known = true;
    write_broken = false;
}

io_step pipe_impl::read_bytes(std::span<std::byte> buffer, std::size_t& n,
                              std::error_code& ec) noexcept {
    n = transport->receive(buffer, {}, ec);
    if (ec)
        return would_block(ec) ? io_step::would_block : io_step::done;
    if (n == 0 && !buffer.empty()) {
        // A reset peer ends the stream for a reader too (the transport says so with 0): what it
        // sent was delivered before the reset was reported.
        ec = transport->end_of_stream_error();
        if (!ec)
            ec = ::asio::error::eof;
    }
    return io_step::done;
}

io_step pipe_impl::write_bytes(std::span<const ::asio::const_buffer> buffers, std::size_t& n,
                               std::error_code& ec) noexcept {
    std::span<const std::byte> pieces[4];
    std::size_t count = 0;
    for (const auto& b : buffers) {
        if (b.size() == 0)
            continue;
        if (count == std::size(pieces))
            break;  // a short write: the caller sends the rest
        pieces[count++] = {static_cast<const std::byte*>(b.data()), b.size()};
    }
    n = transport->send(std::span<const std::span<const std::byte>>(pieces, count), ec);
    if (ec) {
        if (would_block(ec))
            return io_step::would_block;
        if (ec == npipe::errc::broken_pipe)
            write_broken = true;
    }
    return io_step::done;
}

io_step pipe_impl::read_message(payload_sink& sink, read_kind kind, read_progress& p,
                                std::error_code& ec) noexcept {
    auto& reader = *messages;
    io_step step = io_step::done;
    // A message may cost a turn only so much: a peer streaming frames that never finish a
    // message (empty continuation frames, say) must not keep other pipes from their turn.
    constexpr int max_receives_per_turn = 16;  // 1 MiB of 64 KiB records
    int receives = 0;
    while (!reader.read(sink, kind, p, ec)) {
        if (++receives > max_receives_per_turn) {
            step = io_step::yield;
            break;
        }
        auto buffer = reader.receive_buffer(transport->receive_size());
        if (buffer.empty()) {
            ec = std::make_error_code(std::errc::not_enough_memory);
            break;
        }
        std::size_t got = transport->receive(buffer, {}, ec);
        if (ec) {
            if (would_block(ec)) {
                ec.clear();
                step = io_step::would_block;
            } else {
                reader.receive_failed(ec);
            }
            break;
        }
        reader.received(got);
    }
    reader.release_if_drained();
    if (step == io_step::done && !ec && p.n == 0 && reader.end_of_stream()) {
        ec = transport->end_of_stream_error();
        if (!ec)
            ec = ::asio::error::eof;
    }
    return step;
}

void pipe_impl::abandon_read(const read_progress&) noexcept {
    if (messages)
        messages->abandon_message();
}

io_step pipe_impl::write_message(std::span<const ::asio::const_buffer> message, std::size_t total,
                                 write_progress& p, std::error_code& ec) noexcept {
    ec.clear();
    if (write_broken) {
        ec = npipe::errc::broken_pipe;
        return io_step::done;
    }
    const std::size_t max_payload =
        std::min(transport->max_send_size() - npipe::detail::frame_header_size,
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
        // A record transport takes the frame whole or not at all; a stream transport (shared
        // memory) may take part of it, and the rest after a wait.
        const std::size_t frame_size = header.size() + size;
        while (p.frame_sent < frame_size) {
            std::span<const std::byte> rest[4];
            std::size_t rest_count = 0, skip = p.frame_sent;
            for (std::size_t i = 0; i < count; ++i) {
                if (skip >= pieces[i].size()) {
                    skip -= pieces[i].size();
                    continue;
                }
                rest[rest_count++] = pieces[i].subspan(skip);
                skip = 0;
            }
            std::error_code sec;
            std::size_t sent =
                transport->send(std::span<const std::span<const std::byte>>(rest, rest_count), sec);
            if (sec) {
                if (would_block(sec))
                    return io_step::would_block;
                if (sec == npipe::errc::broken_pipe)
                    write_broken = true;
                ec = sec;
                return io_step::done;
            }
            p.started = true;
            p.frame_sent += sent;
        }
        p.frame_sent = 0;
        p.offset += size;
        p.final_sent = !more;
    }
    return io_step::done;
}

void pipe_impl::abandon_write(const write_progress& p) noexcept {
    if (p.started && !p.final_sent && socket.is_open()) {
        std::error_code ignored;
        transport->shutdown(npipe::detail::shutdown_how::send, ignored);
        write_broken = true;
    }
}

bool pipe_impl::data_waiting_unseen() noexcept {
    return transport && !transport->handle_shows_data() && transport->prepare_receive_wait();
}

bool pipe_impl::is_message_complete() const noexcept {
    return !messages || messages->is_message_complete();
}

bool pipe_impl::end_of_stream() const noexcept {
    return messages && messages->end_of_stream();
}

}  // namespace npipe::asio::detail

namespace npipe::asio {

std::size_t pipe_stream::available(std::error_code& ec) const noexcept {
    if (!is_open()) {
        ec = npipe::errc::not_connected;
        return 0;
    }
    if (impl_->transmission == npipe::transmission_mode::message) {
        ec = npipe::errc::not_supported;
        return 0;
    }
    // Shared memory: the bytes are in the ring, not behind the handle.
    if (!impl_->transport->handle_shows_data()) {
        ec.clear();
        return impl_->transport->available();
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
    impl_->transport->shutdown(npipe::detail::shutdown_how::send, ec);
    npipe::detail::throw_if(ec, pipe_name(), "shut down the write side");
    impl_->direction = pipe_direction::in;
}

}  // namespace npipe::asio
