// The forwarding engine shared by the gateway and the remote client: TLS on a TCP socket on one
// side, a local socket (a pipe's connection) on the other, bytes moved both ways by one
// io_context thread for any number of connections.
//
// OpenSSL is driven directly on the non-blocking socket (SSL_set_fd) and Asio only waits for
// readiness, rather than ::asio::ssl::stream: that stream's shutdown waits for the peer's
// close_notify, which cannot be had while the other direction still reads, and half-close (one
// side's close_notify while the other still sends, as TLS 1.3 allows) is what a pipe's
// shutdown_write needs. It also saves ::asio::ssl's copy through its memory BIO.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <system_error>

#include "remote/tls.hpp"

namespace npipe::detail::remote {

/// A TLS connection on a TCP socket, and the async OpenSSL calls on it.
class tls_socket {
  public:
    tls_socket(::asio::ip::tcp::socket socket, ssl_ptr ssl)
        : socket_(std::move(socket)), ssl_(std::move(ssl)) {}

    ::asio::ip::tcp::socket& socket() noexcept { return socket_; }
    SSL* ssl() const noexcept { return ssl_.get(); }

    /// Calls `op` (an OpenSSL call returning its usual int) until it completes, waiting for
    /// the socket whenever OpenSSL wants to read or write; then calls
    /// handler(result, ssl_error) with ssl_error from SSL_get_error (0 when result > 0).
    /// `keep` is kept alive until the handler runs.
    void async_ssl(std::function<int()> op, std::function<void(int, int)> handler,
                   std::shared_ptr<void> keep);

    /// The error that ended a failed call (system errno, or a protocol error with the OpenSSL
    /// reason in `why`).
    std::error_code failure(int ssl_error, std::string* why = nullptr);

  private:
    ::asio::ip::tcp::socket socket_;
    ssl_ptr ssl_;
};

struct pump_settings {
    std::size_t buffer_size = 256 * 1024;
    /// The local socket is SOCK_SEQPACKET: each write is one record of at most this size (a
    /// message-mode pipe's receive buffer). 0: a byte stream.
    std::size_t record_size = 0;
    std::chrono::milliseconds idle_timeout{0};  ///< 0: never
};

/// Moves bytes between `tls` and `local` until both directions have ended: the local side's
/// end of stream becomes a close_notify, the peer's close_notify becomes shutdown(SHUT_WR) of
/// the local socket. Any error (or the idle timeout, or stop()) ends everything; on_done gets
/// the first error (empty after a clean end), before the sockets are closed.
///
/// A direction holds its buffer (settings.buffer_size) only while it has data in flight: a read
/// that would block hands the buffer back and waits for readiness without one, so an idle
/// connection costs its sockets, its SSL and this object, not two large buffers. Buffers handed
/// back go to a small per-thread cache (see take_buffer in pump.cpp), so a stream that pauses
/// and resumes on the same thread neither maps nor faults in fresh pages each time.
class pump : public std::enable_shared_from_this<pump> {
  public:
    pump(std::shared_ptr<tls_socket> tls, ::asio::generic::stream_protocol::socket local,
         pump_settings settings, std::function<void(std::error_code)> on_done);
    ~pump();
    pump(const pump&) = delete;
    pump& operator=(const pump&) = delete;

    void start();
    /// Ends the forwarding at once (from the io_context's thread).
    void stop(std::error_code why);

  private:
    void read_local();
    void on_local_read(std::error_code ec, std::size_t n);
    void write_tls(std::size_t offset, std::size_t size);
    void send_close_notify();
    void read_tls();
    void write_local(std::size_t offset, std::size_t size);
    void arm_idle_timer();
    void touch() { last_activity_ = std::chrono::steady_clock::now(); }
    void maybe_finish();

    std::shared_ptr<tls_socket> tls_;
    ::asio::generic::stream_protocol::socket local_;
    pump_settings settings_;
    std::function<void(std::error_code)> on_done_;
    /// local -> TLS, TLS -> local; null while that direction waits for data.
    std::unique_ptr<std::byte[]> up_, down_;
    ::asio::steady_timer idle_timer_;
    std::chrono::steady_clock::time_point last_activity_;
    bool up_done_ = false, down_done_ = false, finished_ = false;
    bool local_gone_ = false;  ///< the local peer closed both ways: nothing more to deliver
};

}  // namespace npipe::detail::remote
