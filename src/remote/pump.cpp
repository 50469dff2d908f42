#include "remote/pump.hpp"

#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>

#include <vector>

#include "npipe/errors.hpp"

namespace npipe::detail::remote {

namespace {

// Buffers that idle directions handed back, kept for the next burst on this thread. Without
// them, a stream that pauses whenever its reader outruns its writer would malloc and free a
// buffer of mmap size each time, and glibc may unmap or trim it and fault the pages in again.
// A couple per thread is enough for the bursts one thread serves at a time, and bounds what an
// all-idle io_context keeps whatever its number of connections.
thread_local bool cache_gone = false;  // trivially destructible: readable during thread exit

struct buffer_cache {
    static constexpr std::size_t kept = 2;
    std::size_t size = 0;  ///< the size of every cached buffer (one size at a time)
    std::vector<std::unique_ptr<std::byte[]>> free;
    buffer_cache() { free.reserve(kept); }
    // A pump destroyed after this (a static io_context at exit) frees its buffers directly.
    ~buffer_cache() { cache_gone = true; }
};

buffer_cache* cache() {
    if (cache_gone)
        return nullptr;
    thread_local buffer_cache c;
    return &c;
}

std::unique_ptr<std::byte[]> take_buffer(std::size_t size) {
    auto* c = cache();
    if (c && c->size == size && !c->free.empty()) {
        auto b = std::move(c->free.back());
        c->free.pop_back();
        return b;
    }
    return std::make_unique_for_overwrite<std::byte[]>(size);
}

void give_back(std::unique_ptr<std::byte[]>& buffer, std::size_t size) {
    if (!buffer)
        return;
    auto* c = cache();
    if (c && c->free.empty())
        c->size = size;
    if (c && c->size == size && c->free.size() < buffer_cache::kept)
        c->free.push_back(std::move(buffer));  // reserved: cannot throw
    buffer.reset();
}

}  // namespace

void tls_socket::async_ssl(std::function<int()> op, std::function<void(int, int)> handler,
                           std::shared_ptr<void> keep) {
    ERR_clear_error();
    int result = op();
    int error = result > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), result);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        auto type = error == SSL_ERROR_WANT_READ ? ::asio::socket_base::wait_read
                                                 : ::asio::socket_base::wait_write;
        socket_.async_wait(type, [this, op = std::move(op), handler = std::move(handler),
                                  keep](const std::error_code& ec) mutable {
            if (ec) {
                handler(-1, ec == ::asio::error::operation_aborted ? SSL_ERROR_ZERO_RETURN + 100
                                                                   : SSL_ERROR_SYSCALL);
                return;
            }
            async_ssl(std::move(op), std::move(handler), std::move(keep));
        });
        return;
    }
    handler(result, error);
}

std::error_code tls_socket::failure(int ssl_error, std::string* why) {
    if (ssl_error == SSL_ERROR_ZERO_RETURN + 100)
        return errc::operation_aborted;
    if (ssl_error == SSL_ERROR_SYSCALL) {
        int e = errno;
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 &&
            so_error != 0)
            e = so_error;
        if (e == ETIMEDOUT)
            return errc::timed_out;
        if (e == 0 || e == EPIPE || e == ECONNRESET)
            return errc::broken_pipe;  // the peer vanished without a close_notify
        return {e, std::system_category()};
    }
    // OpenSSL 3 reports a TCP close without close_notify as this protocol error: for a pipe
    // it is the peer vanishing mid-stream.
    if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return errc::broken_pipe;
    }
    std::string reasons = take_ssl_errors();
    if (why)
        *why = reasons;
    return errc::protocol_error;
}

pump::pump(std::shared_ptr<tls_socket> tls, ::asio::generic::stream_protocol::socket local,
           pump_settings settings, std::function<void(std::error_code)> on_done)
    : tls_(std::move(tls)),
      local_(std::move(local)),
      settings_(settings),
      on_done_(std::move(on_done)),
      idle_timer_(local_.get_executor()) {
    if (settings_.record_size != 0 && settings_.record_size > settings_.buffer_size)
        settings_.record_size = settings_.buffer_size;
    // read_local() tries each read at once and waits for readiness only when it would block.
    std::error_code ignored;
    local_.non_blocking(true, ignored);
}

pump::~pump() {
    give_back(up_, settings_.buffer_size);
    give_back(down_, settings_.buffer_size);
}

void pump::start() {
    touch();
    read_local();
    read_tls();
    if (settings_.idle_timeout.count() > 0)
        arm_idle_timer();
}

void pump::arm_idle_timer() {
    idle_timer_.expires_at(last_activity_ + settings_.idle_timeout);
    idle_timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
        if (ec || self->finished_)
            return;
        if (std::chrono::steady_clock::now() >= self->last_activity_ + self->settings_.idle_timeout)
            self->stop(errc::timed_out);
        else
            self->arm_idle_timer();
    });
}

void pump::stop(std::error_code why) {
    if (finished_)
        return;
    finished_ = true;
    if (auto done = std::move(on_done_))
        done(why);  // moved out first: it may own whoever owns us
    std::error_code ignored;
    idle_timer_.cancel();
    local_.shutdown(::asio::socket_base::shutdown_both, ignored);
    local_.close(ignored);
    tls_->socket().shutdown(::asio::socket_base::shutdown_both, ignored);
    tls_->socket().close(ignored);
}

void pump::maybe_finish() {
    if (up_done_ && (down_done_ || local_gone_))
        stop({});
}

void pump::read_local() {
    if (!up_)
        up_ = take_buffer(settings_.buffer_size);
    std::error_code ec;
    std::size_t n =
        local_.read_some(::asio::buffer(up_.get(), settings_.record_size ? settings_.record_size
                                                                         : settings_.buffer_size),
                         ec);
    if (ec == ::asio::error::would_block || ec == ::asio::error::try_again) {
        // Nothing to forward: wait without holding the buffer.
        give_back(up_, settings_.buffer_size);
        local_.async_wait(::asio::socket_base::wait_read,
                          [self = shared_from_this()](const std::error_code& error) {
                              if (self->finished_)
                                  return;
                              if (error)
                                  self->on_local_read(error, 0);
                              else
                                  self->read_local();
                          });
        return;
    }
    // Go on from the io_context, not from here: write_tls can complete at once and call us
    // again, which would recurse for as long as data kept coming and starve other connections.
    ::asio::post(local_.get_executor(), [self = shared_from_this(), ec, n] {
        if (!self->finished_)
            self->on_local_read(ec, n);
    });
}

void pump::on_local_read(std::error_code ec, std::size_t n) {
    if (ec == ::asio::error::eof || (!ec && n == 0)) {
        give_back(up_, settings_.buffer_size);
        // Closed both ways (not just shut down for writing): nothing we receive can be
        // delivered, so the connection ends once the close_notify is out.
        pollfd p{local_.native_handle(), 0, 0};
        local_gone_ = ::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
        send_close_notify();
        return;
    }
    if (ec) {
        stop(ec == ::asio::error::connection_reset ? std::error_code(errc::broken_pipe) : ec);
        return;
    }
    touch();
    write_tls(0, n);
}

void pump::write_tls(std::size_t offset, std::size_t size) {
    auto self = shared_from_this();
    std::byte* data = up_.get() + offset;
    int chunk = static_cast<int>(std::min<std::size_t>(size, 1 << 30));
    tls_->async_ssl([this, data, chunk] { return SSL_write(tls_->ssl(), data, chunk); },
                    [this, offset, size](int n, int error) {
                        if (finished_)
                            return;
                        if (n <= 0) {
                            stop(tls_->failure(error));
                            return;
                        }
                        touch();
                        auto written = static_cast<std::size_t>(n);
                        if (written < size)
                            write_tls(offset + written, size - written);
                        else
                            read_local();
                    },
                    self);
}

void pump::send_close_notify() {
    tls_->async_ssl([this] { return SSL_shutdown(tls_->ssl()); },
                    [this](int result, int error) {
                        if (finished_)
                            return;
                        if (result < 0) {
                            stop(tls_->failure(error));
                            return;
                        }
                        up_done_ = true;
                        maybe_finish();
                    },
                    shared_from_this());
}

void pump::read_tls() {
    std::size_t cap = settings_.record_size ? settings_.record_size : settings_.buffer_size;
    tls_->async_ssl(
        [this, cap] {
            if (!down_)
                down_ = take_buffer(settings_.buffer_size);
            int n = SSL_read(tls_->ssl(), down_.get(), static_cast<int>(cap));
            // Nothing was read into the buffer, so it goes back while the socket is waited
            // for (or the direction ends): OpenSSL keeps no pointer to it across calls, unlike
            // SSL_write's, and buffers a partial record in its own (released) buffer.
            if (n <= 0)
                give_back(down_, settings_.buffer_size);
            return n;
        },
        [this](int n, int error) {
            if (finished_)
                return;
            if (n <= 0) {
                if (error == SSL_ERROR_ZERO_RETURN) {
                    // The peer's close_notify: its half-close reaches the local peer as
                    // end of stream, while our direction goes on.
                    std::error_code ignored;
                    local_.shutdown(::asio::socket_base::shutdown_send, ignored);
                    down_done_ = true;
                    maybe_finish();
                    return;
                }
                stop(tls_->failure(error));
                return;
            }
            touch();
            write_local(0, static_cast<std::size_t>(n));
        },
        shared_from_this());
}

void pump::write_local(std::size_t offset, std::size_t size) {
    // A SOCK_SEQPACKET socket sends each write as one record, whole; a stream socket may take
    // part of it, and the rest follows.
    local_.async_write_some(
        ::asio::buffer(down_.get() + offset, size),
        [self = shared_from_this(), offset, size](const std::error_code& ec, std::size_t n) {
            if (self->finished_)
                return;
            if (ec) {
                // The local peer stopped reading (closed): drop what it will never read and
                // let the other direction finish.
                give_back(self->down_, self->settings_.buffer_size);
                self->down_done_ = true;
                self->local_gone_ = true;
                self->maybe_finish();
                return;
            }
            self->touch();
            if (n < size)
                self->write_local(offset + n, size - n);
            else
                self->read_tls();
        });
}

}  // namespace npipe::detail::remote
