#include "npipe/pipe_stream.hpp"

#include "core/pipe_state.hpp"
#include "npipe/errors.hpp"

namespace npipe {

pipe_stream::pipe_stream(std::shared_ptr<detail::pipe_state> state) noexcept
    : state_(std::move(state)) {}

pipe_stream::pipe_stream(pipe_stream&&) noexcept = default;

pipe_stream& pipe_stream::operator=(pipe_stream&& other) noexcept {
    if (this != &other) {
        if (state_)
            state_->close();
        state_ = std::move(other.state_);
    }
    return *this;
}

pipe_stream::~pipe_stream() {
    // Closing (not just dropping our reference) ends any wait another thread has on this pipe.
    if (state_)
        state_->close();
}

namespace {

// Why the pipe cannot be read (written) now, or errc{} when it can. An errc rather than an
// error_code because these run on every read and write, and an empty std::error_code is made
// by calling system_category() out of line, in libstdc++.
errc why_not_readable(const detail::pipe_state& s) noexcept {
    if (s.closed)
        return errc::operation_aborted;
    if (!s.conn)
        return errc::not_connected;
    if (s.direction == pipe_direction::out)
        return errc::wrong_direction;
    return {};
}

errc why_not_writable(const detail::pipe_state& s) noexcept {
    if (s.closed)
        return errc::operation_aborted;
    if (!s.conn)
        return errc::not_connected;
    if (s.direction == pipe_direction::in)
        return errc::wrong_direction;
    if (s.broken)
        return errc::broken_pipe;
    return {};
}

/// The error_code the throwing read and write start from: a copy of an empty one costs no call
/// (see why_not_readable).
std::error_code no_error() noexcept {
    static const std::error_code none;
    return none;
}

// The bodies of read and write, inlined into both overloads of each: a read or write is then
// one call from the caller into pipe_stream and one into the transport (see send_all).
[[gnu::always_inline]] inline std::size_t read_into(detail::pipe_state& s,
                                                    std::span<std::byte> buffer,
                                                    std::error_code& ec) noexcept {
    if (auto why = why_not_readable(s); why != errc{}) [[unlikely]] {
        ec = why;
        return 0;
    }
    if (s.messages) [[unlikely]] {
        auto n = s.messages->read(buffer, s.read_mode.load(std::memory_order_relaxed), ec);
        if (n == 0 && !ec && s.messages->end_of_stream()) [[unlikely]]
            ec = s.conn ? s.conn->end_of_stream_error() : std::error_code();
        return n;
    }
    auto n = s.conn->receive(buffer, s.spin, ec);
    if (n == 0 && !ec && !buffer.empty()) [[unlikely]] {
        if ((ec = s.conn->end_of_stream_error()))
            return 0;
        s.eof = true;
    }
    return n;
}

[[gnu::always_inline]] inline void write_from(detail::pipe_state& s,
                                              std::span<const std::byte> data,
                                              std::error_code& ec) noexcept {
    if (auto why = why_not_writable(s); why != errc{}) [[unlikely]] {
        ec = why;
        return;
    }
    if (s.messages) [[unlikely]]
        s.messages->write(data, ec);
    else {
        const std::span<const std::byte> pieces[1] = {data};
        detail::send_all(*s.conn, pieces, ec);
    }
    if (ec && ec == errc::broken_pipe) [[unlikely]]
        s.broken = true;
}

}  // namespace

std::size_t pipe_stream::read(std::span<std::byte> buffer, std::error_code& ec) noexcept {
    return read_into(*state_, buffer, ec);
}

std::size_t pipe_stream::read(std::span<std::byte> buffer) {
    std::error_code ec = no_error();
    auto n = read_into(*state_, buffer, ec);
    detail::throw_if(ec, state_->name, "read");
    return n;
}

void pipe_stream::write(std::span<const std::byte> data, std::error_code& ec) noexcept {
    write_from(*state_, data, ec);
}

void pipe_stream::write(std::span<const std::byte> data) {
    std::error_code ec = no_error();
    write_from(*state_, data, ec);
    detail::throw_if(ec, state_->name, "write");
}

void pipe_stream::flush(std::error_code& ec) noexcept {
    ec.clear();
    auto& s = *state_;
    if (!s.messages)
        return;  // byte pipes hold nothing back
    s.messages->flush(ec);
    if (ec == errc::broken_pipe)
        s.broken = true;
}

void pipe_stream::flush() {
    std::error_code ec;
    flush(ec);
    detail::throw_if(ec, state_->name, "flush");
}

int pipe_stream::read_byte() {
    std::byte b{};
    return read(std::span(&b, 1)) == 1 ? static_cast<int>(b) : -1;
}

void pipe_stream::write_byte(std::uint8_t value) {
    auto b = static_cast<std::byte>(value);
    write(std::span<const std::byte>(&b, 1));
}

void pipe_stream::shutdown_write() {
    auto& s = *state_;
    auto why = why_not_writable(s);
    if (why == errc::broken_pipe)
        return;  // nothing more can reach the peer anyway
    std::error_code ec = why;
    detail::throw_if(ec, s.name, "shut down the write side");
    if (!s.conn->shutdown(detail::shutdown_how::send, ec))
        s.conn.reset();  // it could only close (a FIFO end, which flows one way)
    detail::throw_if(ec, s.name, "shut down the write side");
    s.direction = pipe_direction::in;
}

bool pipe_stream::can_read() const noexcept {
    return state_ && state_->conn && !state_->closed && state_->direction != pipe_direction::out;
}

bool pipe_stream::can_write() const noexcept {
    return state_ && state_->conn && !state_->closed && state_->direction != pipe_direction::in;
}

bool pipe_stream::is_connected() const noexcept {
    return state_ && state_->conn && !state_->closed;
}

npipe::transmission_mode pipe_stream::transmission_mode() const {
    auto& s = *state_;
    if (!s.transmission_known)
        detail::throw_if(errc::not_connected, s.name, "get the transmission mode");
    return s.transmission;
}

npipe::transmission_mode pipe_stream::read_mode() const noexcept {
    return state_ ? state_->read_mode.load(std::memory_order_relaxed)
                  : npipe::transmission_mode::byte;
}

void pipe_stream::set_read_mode(npipe::transmission_mode mode, std::error_code& ec) noexcept {
    auto& s = *state_;
    ec.clear();
    if (mode != npipe::transmission_mode::byte && mode != npipe::transmission_mode::message)
        ec = errc::invalid_argument;
    else if (mode == npipe::transmission_mode::message && !s.transmission_known)
        ec = errc::not_connected;
    else if (mode == npipe::transmission_mode::message &&
             s.transmission != npipe::transmission_mode::message)
        ec = errc::not_supported;
    else
        s.read_mode.store(mode, std::memory_order_relaxed);
}

void pipe_stream::set_read_mode(npipe::transmission_mode mode) {
    std::error_code ec;
    set_read_mode(mode, ec);
    detail::throw_if(ec, state_->name,
                     ec == errc::not_supported
                         ? "set message read mode: the pipe is a byte-mode pipe"
                         : std::string("set the read mode"));
}

bool pipe_stream::is_message_complete() const noexcept {
    return !state_ || !state_->messages || state_->messages->is_message_complete();
}

bool pipe_stream::end_of_stream() const noexcept {
    if (!state_)
        return false;
    return state_->messages ? state_->messages->end_of_stream() : state_->eof;
}

peer_credentials pipe_stream::get_peer_credentials() const {
    auto& s = *state_;
    if (!s.conn)
        detail::throw_if(errc::not_connected, s.name, "get peer credentials");
    std::error_code ec;
    auto peer = s.conn->peer(ec);
    detail::throw_if(ec, s.name, "get peer credentials");
    return peer;
}

void pipe_stream::close() noexcept {
    if (state_)
        state_->close();
}

pipe_stream::native_handle_type pipe_stream::native_handle() const noexcept {
    return state_ && !state_->closed && state_->conn ? state_->conn->native_handle()
                                                     : detail::platform::invalid_handle;
}

const std::string& pipe_stream::pipe_name() const noexcept {
    return state_->name;
}

}  // namespace npipe
