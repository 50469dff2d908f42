// The client side of remote pipes: connects to a gateway over TLS 1.3, asks for the pipe, and
// hands named_pipe_client one end of a local socket pair whose other end a relay thread
// forwards to the TLS connection. The pipe's read/write path thus stays the local one, and the
// relay (pump.hpp, shared with the gateway) owns everything TLS.
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "npipe/errors.hpp"
#include "npipe/remote_options.hpp"
#include "pipe_state.hpp"
#include "posix/local_socket.hpp"
#include "remote/address.hpp"
#include "remote/connector.hpp"
#include "remote/pump.hpp"
#include "remote/remote_protocol.hpp"
#include "remote/tls.hpp"

namespace npipe {
namespace detail::remote {
namespace {

using clock = std::chrono::steady_clock;
using deadline_t = std::optional<clock::time_point>;

// One remote pipe's relay: an io_context on a thread of its own forwarding between the TLS
// connection and the relay's end of the local socket pair. Owned by the pipe: close() winds it
// down and joins the thread, so a closed pipe leaves neither thread nor descriptor behind.
class relay final : public remote_link {
  public:
    // How long close() lets the relay deliver what the pipe wrote before it closed (the
    // gateway may be slow to read) before cutting it off, as SO_LINGER would.
    static constexpr auto linger = std::chrono::seconds(5);

    relay(unique_fd tcp, ssl_ptr ssl, unique_fd local, bool message, std::error_code& ec) {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ::getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&addr), &len);
        asio::ip::tcp::socket socket(io_);
        socket.assign(addr.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(),
                      tcp.get(), ec);
        if (ec)
            return;
        tcp.release();
        asio::generic::stream_protocol::socket local_socket(io_);
        local_socket.assign(asio::generic::stream_protocol(AF_UNIX, 0), local.get(), ec);
        if (ec)
            return;
        local.release();
        pump_settings settings;
        settings.record_size = message ? max_seqpacket_record : 0;
        // A plain pointer: the pump lives in our io_context, a shared_ptr would be a cycle.
        std::make_shared<pump>(std::make_shared<tls_socket>(std::move(socket), std::move(ssl)),
                               std::move(local_socket), settings,
                               [this](std::error_code e) { set(e); })
            ->start();
        try {
            thread_ = std::thread([this] {
                io_.run();
                std::lock_guard lock(mutex_);
                done_ = true;
                finished_.notify_all();
            });
        } catch (const std::system_error& e) {
            ec = e.code();
        }
    }
    ~relay() override { close(); }

    std::error_code failure() const noexcept override {
        std::lock_guard lock(mutex_);
        return failure_;
    }

    void close() noexcept override {
        std::call_once(close_once_, [this] {
            if (!thread_.joinable())
                return;
            {
                std::unique_lock lock(mutex_);
                finished_.wait_for(lock, linger, [this] { return done_; });
            }
            io_.stop();  // what is still pending dies with io_ (the pump, its sockets, SSL)
            thread_.join();
        });
    }

  private:
    void set(std::error_code ec) noexcept {
        std::lock_guard lock(mutex_);
        failure_ = ec;
    }

    asio::io_context io_{1};
    std::thread thread_;
    mutable std::mutex mutex_;
    std::condition_variable finished_;
    bool done_ = false;
    std::error_code failure_;
    std::once_flag close_once_;
};

int poll_ms(const deadline_t& deadline) {
    if (!deadline)
        return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for `fd` to be ready for `events`; false (ec timed_out or the errno) otherwise.
bool wait_for(int fd, short events, const deadline_t& deadline, std::error_code& ec) {
    for (;;) {
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, poll_ms(deadline));
        if (n > 0)
            return true;
        if (n == 0) {
            ec = errc::timed_out;
            return false;
        }
        if (errno != EINTR) {
            ec = errno_code(errno);
            return false;
        }
    }
}

unique_fd connect_tcp(const host_port& where, const deadline_t& deadline, std::error_code& ec,
                      std::string& why) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    auto port = std::to_string(where.port);
    if (int rc = ::getaddrinfo(where.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
        ec = std::make_error_code(std::errc::host_unreachable);
        why = "resolve '" + where.host + "': " + ::gai_strerror(rc);
        return {};
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, ::freeaddrinfo);
    for (auto* a = found; a; a = a->ai_next) {
        unique_fd fd(::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) {
            ec = errno_code(errno);
            continue;
        }
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                ec = {errno, std::system_category()};
                continue;
            }
            if (!wait_for(fd.get(), POLLOUT, deadline, ec))
                break;
            int error = 0;
            socklen_t len = sizeof error;
            ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len);
            if (error != 0) {
                ec = {error, std::system_category()};
                continue;
            }
        }
        ec.clear();
        return fd;
    }
    why = "connect to the gateway at " + where.host + ":" + port + ": " + ec.message();
    return {};
}

// Runs an OpenSSL call on the non-blocking socket until it completes or the deadline passes.
int blocking_ssl(SSL* ssl, int fd, const deadline_t& deadline, std::error_code& ec,
                 const std::function<int()>& op, int& ssl_error) {
    for (;;) {
        ERR_clear_error();
        int r = op();
        ssl_error = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
        if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
            if (!wait_for(fd, ssl_error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, ec))
                return -1;
            continue;
        }
        return r;
    }
}

// A failed handshake or answer: which side refused whom, in words.
void describe_tls_failure(SSL* ssl, int ssl_error, std::error_code& ec, std::string& why,
                          const char* stage) {
    if (ec)  // a timeout or poll error
        return;
    std::string reasons = take_ssl_errors();
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        ec = errc::access_denied;
        why = std::string("the gateway's certificate is not trusted: ") +
              X509_verify_cert_error_string(verify);
    } else if (ssl_error == SSL_ERROR_SSL) {
        ec = errc::access_denied;
        why = std::string(stage) + ": the gateway refused the TLS connection: " + reasons;
    } else {
        int e = errno;
        ec = e == ETIMEDOUT ? std::error_code(errc::timed_out) : std::error_code(errc::broken_pipe);
        why = std::string(stage) +
              ": the gateway closed the connection (is it a TLS 1.3 npipe gateway?)";
    }
}

std::error_code status_error(status s) {
    switch (s) {
        case status::ok:
            return {};
        case status::unknown_pipe:
            return std::make_error_code(std::errc::no_such_file_or_directory);
        case status::not_allowed:
        case status::bad_token:
            return errc::access_denied;
        case status::pipe_busy:
            return errc::all_instances_busy;
        case status::shutting_down:
            return std::make_error_code(std::errc::connection_refused);
        case status::unsupported_version:
        case status::bad_request:
            return errc::protocol_error;
        case status::gateway_error:
            break;
    }
    return errc::broken_pipe;
}

remote_connection connect_remote(std::string_view server, std::string_view name, pipe_direction,
                                 const pipe_options& options, deadline_t deadline,
                                 std::error_code& ec, std::string& why) {
    remote_connection out;
    auto where = parse_host_port(server, default_port);
    if (!where) {
        ec = errc::invalid_name;
        why = "'" + std::string(server) + "' is not HOST or HOST:PORT";
        return out;
    }
    static const remote_options defaults;
    const remote_options& tls = options.remote ? *options.remote : defaults;
    if (tls.token.size() > max_token) {
        ec = errc::invalid_argument;
        why = "the token is longer than " + std::to_string(max_token) + " bytes";
        return out;
    }
    auto ctx = make_tls13_context(false, why);
    if (!ctx) {
        ec = errc::protocol_error;
        return out;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (tls.ca_file.empty()
            ? SSL_CTX_set_default_verify_paths(ctx.get()) != 1
            : SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(), nullptr) != 1) {
        ec = errc::invalid_argument;
        why = "load CA " + tls.ca_file + ": " + take_ssl_errors();
        return out;
    }
    if (!tls.cert_file.empty() || !tls.key_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx.get()) != 1) {
            ec = errc::invalid_argument;
            why = "load client certificate " + tls.cert_file + " / key " + tls.key_file + ": " +
                  take_ssl_errors();
            return out;
        }
    }
    auto tcp = connect_tcp(*where, deadline, ec, why);
    if (!tcp)
        return out;
    set_dead_peer_timeout(tcp.get(), tls.dead_peer_timeout);
    ssl_ptr ssl(SSL_new(ctx.get()));
    if (!ssl || !attach_socket(ssl.get(), tcp.get())) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return out;
    }
    // The certificate must name the host we were told to reach.
    asio::error_code parse_error;
    asio::ip::make_address(where->host, parse_error);
    if (parse_error) {
        SSL_set_tlsext_host_name(ssl.get(), where->host.c_str());
        SSL_set1_host(ssl.get(), where->host.c_str());
    } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), where->host.c_str());
    }
    int ssl_error = 0;
    SSL* s = ssl.get();
    if (blocking_ssl(
            s, tcp.get(), deadline, ec, [s] { return SSL_connect(s); }, ssl_error) <= 0) {
        describe_tls_failure(s, ssl_error, ec, why, "TLS handshake");
        return out;
    }
    auto request_bytes = encode_request({protocol_version, std::string(name), tls.token});
    std::size_t sent = 0;
    while (sent < request_bytes.size()) {
        int n = blocking_ssl(
            s, tcp.get(), deadline, ec,
            [&] {
                return SSL_write(s, request_bytes.data() + sent,
                                 static_cast<int>(request_bytes.size() - sent));
            },
            ssl_error);
        if (n <= 0) {
            if (!ec && ssl_error == SSL_ERROR_SYSCALL) {
                // The gateway may have refused our certificate (TLS 1.3 checks it after our
                // side of the handshake) and closed: its alert is waiting to be read.
                std::byte ignored[answer_size];
                std::error_code read_ec;
                int read_error = 0;
                if (blocking_ssl(
                        s, tcp.get(), deadline, read_ec,
                        [&] { return SSL_read(s, ignored, sizeof ignored); }, read_error) <= 0 &&
                    read_error == SSL_ERROR_SSL) {
                    describe_tls_failure(s, read_error, ec, why, "read the gateway's answer");
                    return out;
                }
            }
            describe_tls_failure(s, ssl_error, ec, why, "send the request");
            return out;
        }
        sent += static_cast<std::size_t>(n);
    }
    // Exactly the answer's bytes: what follows is the pipe's, and stays in OpenSSL's buffer
    // for the relay.
    std::array<std::byte, answer_size> answer_bytes{};
    std::size_t have = 0;
    answer a;
    for (;;) {
        int n = blocking_ssl(
            s, tcp.get(), deadline, ec,
            [&] {
                return SSL_read(s, answer_bytes.data() + have,
                                static_cast<int>(answer_size - have));
            },
            ssl_error);
        if (n <= 0) {
            // TLS 1.3 checks our certificate after our side of the handshake is done: its
            // refusal arrives here, as an alert.
            describe_tls_failure(s, ssl_error, ec, why, "read the gateway's answer");
            return out;
        }
        have += static_cast<std::size_t>(n);
        std::size_t consumed = 0;
        auto r = parse_answer(std::span(answer_bytes.data(), have), a, consumed);
        if (r == parse_result::done)
            break;
        if (r == parse_result::invalid) {
            ec = errc::protocol_error;
            why = "the gateway's answer is not npipe's remote protocol";
            return out;
        }
    }
    if (a.code != status::ok) {
        ec = status_error(a.code);
        why = describe(a.code);
        return out;
    }
    int pair[2];
    int type = a.message_mode ? SOCK_SEQPACKET : SOCK_STREAM;
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, pair) != 0) {
        ec = errno_code(errno);
        return out;
    }
    out.fd = unique_fd(pair[0]);
    auto link = std::make_shared<relay>(std::move(tcp), std::move(ssl), unique_fd(pair[1]),
                                        a.message_mode, ec);
    if (ec) {
        out.fd.reset();
        return out;
    }
    out.message = a.message_mode;
    out.link = std::move(link);
    ec.clear();
    return out;
}

}  // namespace
}  // namespace detail::remote

void enable_remote_pipes() noexcept {
    detail::set_remote_connector(&detail::remote::connect_remote);
}

remote_options::remote_options() {
    enable_remote_pipes();
}

namespace {
// Linked in (any use of npipe::remote's client pulls this file): remote names just work.
[[maybe_unused]] const bool registered = (enable_remote_pipes(), true);
}  // namespace

}  // namespace npipe
