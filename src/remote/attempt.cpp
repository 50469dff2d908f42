#include "remote/attempt.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <array>
#include <vector>

#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/local_socket.hpp"
#include "remote/address.hpp"
#include "remote/pump.hpp"
#include "remote/remote_protocol.hpp"
#include "remote/tls.hpp"

namespace npipe::detail::remote {
namespace {

using clock = std::chrono::steady_clock;

std::error_code status_error(status s) {
    switch (s) {
        case status::ok:
            return {};
        case status::unknown_pipe:
            return std::make_error_code(std::errc::no_such_file_or_directory);
        case status::not_allowed:
        case status::bad_token:
        case status::not_available:
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

class tls_attempt final : public attempt, public std::enable_shared_from_this<tls_attempt> {
  public:
    tls_attempt(const ::asio::any_io_executor& ex, std::string_view name,
                const remote_options& options, std::function<void(std::error_code)> on_end,
                std::function<void(attempt_result)> done)
        : ex_(ex),
          name_(name),
          options_(options),
          on_end_(std::move(on_end)),
          done_(std::move(done)),
          socket_(ex),
          resolver_(ex),
          timer_(ex) {}

    void start(std::string_view server, std::optional<clock::time_point> deadline) {
        auto where = parse_host_port(server, default_port);
        if (!where)
            return fail(errc::invalid_name,
                        "'" + std::string(server) + "' is not HOST or HOST:PORT");
        where_ = *where;
        if (options_.token.size() > max_token)
            return fail(errc::invalid_argument,
                        "the token is longer than " + std::to_string(max_token) + " bytes");
        if (!make_context())
            return;
        if (deadline && *deadline <= clock::now()) {
            // connect(0): no wait for the pipe, but one whole attempt, so that the answer is
            // the gateway's ("no such pipe", "busy"); the network is bounded as a connection's.
            deadline.reset();
            if (options_.dead_peer_timeout.count() > 0)
                deadline = clock::now() + options_.dead_peer_timeout;
        }
        if (deadline) {
            timer_.expires_at(*deadline);
            timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
                if (!ec)
                    self->fail(errc::timed_out, "");
            });
        }
        ::asio::error_code not_ip;
        auto address = ::asio::ip::make_address(where_.host, not_ip);
        if (!not_ip)
            return connect({::asio::ip::tcp::endpoint(address, where_.port)});
        resolver_.async_resolve(
            where_.host, std::to_string(where_.port),
            [self = shared_from_this()](const std::error_code& ec,
                                        ::asio::ip::tcp::resolver::results_type found) {
                if (self->finished_)
                    return;
                if (ec)
                    return self->fail(std::make_error_code(std::errc::host_unreachable),
                                      "resolve '" + self->where_.host + "': " + ec.message());
                self->connect({found.begin(), found.end()});
            });
    }

    void cancel() noexcept override { fail(errc::operation_aborted, ""); }

  private:
    bool make_context() {
        std::string why;
        ctx_ = make_tls13_context(false, why);
        if (!ctx_) {
            fail(errc::protocol_error, why);
            return false;
        }
        SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
        if (options_.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_.get()) != 1
                                     : SSL_CTX_load_verify_locations(
                                           ctx_.get(), options_.ca_file.c_str(), nullptr) != 1) {
            fail(errc::invalid_argument, "load CA " + options_.ca_file + ": " + take_ssl_errors());
            return false;
        }
        if (!options_.cert_file.empty() || !options_.key_file.empty()) {
            if (SSL_CTX_use_certificate_chain_file(ctx_.get(), options_.cert_file.c_str()) != 1 ||
                SSL_CTX_use_PrivateKey_file(ctx_.get(), options_.key_file.c_str(),
                                            SSL_FILETYPE_PEM) != 1 ||
                SSL_CTX_check_private_key(ctx_.get()) != 1) {
                fail(errc::invalid_argument, "load client certificate " + options_.cert_file +
                                                 " / key " + options_.key_file + ": " +
                                                 take_ssl_errors());
                return false;
            }
        }
        return true;
    }

    void connect(std::vector<::asio::ip::tcp::endpoint> endpoints) {
        ::asio::async_connect(
            socket_, endpoints,
            [self = shared_from_this()](const std::error_code& ec,
                                        const ::asio::ip::tcp::endpoint&) {
                if (self->finished_)
                    return;
                if (ec)
                    return self->fail(ec == ::asio::error::connection_refused
                                          ? std::make_error_code(std::errc::connection_refused)
                                          : ec,
                                      "connect to the gateway at " + self->where_.host + ":" +
                                          std::to_string(self->where_.port) + ": " + ec.message());
                self->handshake();
            });
    }

    void handshake() {
        std::error_code ignored;
        socket_.non_blocking(true, ignored);
        set_dead_peer_timeout(socket_.native_handle(), options_.dead_peer_timeout);
        ssl_ptr ssl(SSL_new(ctx_.get()));
        if (!ssl || !attach_socket(ssl.get(), socket_.native_handle()))
            return fail(std::make_error_code(std::errc::not_enough_memory), take_ssl_errors());
        // The certificate must name the host we were told to reach.
        ::asio::error_code not_ip;
        ::asio::ip::make_address(where_.host, not_ip);
        if (not_ip) {
            SSL_set_tlsext_host_name(ssl.get(), where_.host.c_str());
            SSL_set1_host(ssl.get(), where_.host.c_str());
        } else {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), where_.host.c_str());
        }
        tls_ = std::make_shared<tls_socket>(std::move(socket_), std::move(ssl));
        tls_->async_ssl([this] { return SSL_connect(tls_->ssl()); },
                        [this](int result, int error) {
                            if (finished_)
                                return;
                            if (result <= 0)
                                return fail_tls(error, "TLS handshake");
                            request_ = encode_request({protocol_version, name_, options_.token});
                            send_request(0);
                        },
                        shared_from_this());
    }

    void send_request(std::size_t sent) {
        tls_->async_ssl(
            [this, sent] {
                return SSL_write(tls_->ssl(), request_.data() + sent,
                                 static_cast<int>(request_.size() - sent));
            },
            [this, sent](int n, int error) {
                if (finished_)
                    return;
                if (n <= 0) {
                    if (error == SSL_ERROR_SYSCALL)
                        return read_alert();
                    return fail_tls(error, "send the request");
                }
                if (sent + static_cast<std::size_t>(n) < request_.size())
                    return send_request(sent + static_cast<std::size_t>(n));
                read_answer();
            },
            shared_from_this());
    }

    // The gateway may have refused our certificate (TLS 1.3 checks it after our side of the
    // handshake) and closed before our request went out: its alert is waiting to be read.
    void read_alert() {
        tls_->async_ssl([this] { return SSL_read(tls_->ssl(), answer_.data(), answer_size); },
                        [this](int, int error) {
                            if (!finished_)
                                fail_tls(error == SSL_ERROR_SSL ? error : SSL_ERROR_SYSCALL,
                                         error == SSL_ERROR_SSL ? "read the gateway's answer"
                                                                : "send the request");
                        },
                        shared_from_this());
    }

    // Exactly the answer's bytes: what follows is the pipe's, and stays in OpenSSL's buffer
    // for the pump.
    void read_answer() {
        tls_->async_ssl(
            [this] {
                return SSL_read(tls_->ssl(), answer_.data() + have_,
                                static_cast<int>(answer_size - have_));
            },
            [this](int n, int error) {
                if (finished_)
                    return;
                if (n <= 0)  // a refused certificate arrives here, as an alert
                    return fail_tls(error, "read the gateway's answer");
                have_ += static_cast<std::size_t>(n);
                answer a;
                std::size_t consumed = 0;
                switch (parse_answer(std::span(answer_.data(), have_), a, consumed)) {
                    case parse_result::need_more:
                        return read_answer();
                    case parse_result::invalid:
                        return fail(errc::protocol_error,
                                    "the gateway's answer is not npipe's remote protocol");
                    case parse_result::done:
                        return answered(a);
                }
            },
            shared_from_this());
    }

    void answered(const answer& a) {
        if (a.code != status::ok) {
            retry_ = a.code == status::unknown_pipe || a.code == status::pipe_busy;
            return fail(status_error(a.code), describe(a.code));
        }
        int pair[2];
        int type = a.message_mode ? SOCK_SEQPACKET : SOCK_STREAM;
        if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, pair) != 0)
            return fail(errno_code(errno), "create the local socket pair");
        unique_fd ours(pair[0]), relay_end(pair[1]);
        std::error_code ec;
        ::asio::generic::stream_protocol::socket local(ex_);
        local.assign(::asio::generic::stream_protocol(AF_UNIX, 0), relay_end.get(), ec);
        if (ec)
            return fail(ec, "relay the pipe");
        relay_end.release();
        pump_settings settings;
        settings.record_size = a.message_mode ? max_seqpacket_record : 0;
        std::make_shared<pump>(tls_, std::move(local), settings, std::move(on_end_))->start();
        finished_ = true;
        timer_.cancel();
        attempt_result r;
        r.fd = std::move(ours);
        r.message = a.message_mode;
        finish(std::move(r));
    }

    // A failed handshake or exchange: which side refused whom, in words.
    void fail_tls(int ssl_error, const char* stage) {
        std::string reasons = take_ssl_errors();
        long verify = SSL_get_verify_result(tls_->ssl());
        if (verify != X509_V_OK)
            return fail(errc::access_denied,
                        std::string("the gateway's certificate is not trusted: ") +
                            X509_verify_cert_error_string(verify));
        if (ssl_error == SSL_ERROR_SSL)
            return fail(
                errc::access_denied,
                std::string(stage) + ": the gateway refused the TLS connection: " + reasons);
        auto ec = tls_->failure(ssl_error);
        fail(ec == errc::timed_out || ec == errc::operation_aborted
                 ? ec
                 : std::error_code(errc::broken_pipe),
             std::string(stage) +
                 ": the gateway closed the connection (is it a TLS 1.3 npipe gateway?)");
    }

    void fail(std::error_code ec, std::string why) {
        if (finished_)
            return;
        finished_ = true;
        std::error_code ignored;
        timer_.cancel();
        resolver_.cancel();
        socket_.close(ignored);
        if (tls_)
            tls_->socket().close(ignored);
        attempt_result r;
        r.ec = ec;
        r.why = std::move(why);
        r.retry = retry_;
        finish(std::move(r));
    }

    // Always through the executor: never inside start(), whose caller is still setting up.
    void finish(attempt_result r) {
        if (auto done = std::move(done_))
            ::asio::post(ex_, [done = std::move(done),
                               r = std::make_shared<attempt_result>(std::move(r))]() mutable {
                done(std::move(*r));
            });
    }

    ::asio::any_io_executor ex_;
    std::string name_;
    remote_options options_;
    std::function<void(std::error_code)> on_end_;
    std::function<void(attempt_result)> done_;
    host_port where_;
    ssl_ctx_ptr ctx_;
    ::asio::ip::tcp::socket socket_;
    ::asio::ip::tcp::resolver resolver_;
    ::asio::steady_timer timer_;
    std::shared_ptr<tls_socket> tls_;
    std::vector<std::byte> request_;
    std::array<std::byte, answer_size> answer_{};
    std::size_t have_ = 0;
    bool finished_ = false, retry_ = false;
};

}  // namespace

std::shared_ptr<attempt> start_attempt(
    const ::asio::any_io_executor& ex, std::string_view server, std::string_view name,
    const remote_options& options, std::optional<std::chrono::steady_clock::time_point> deadline,
    std::function<void(std::error_code)> on_end, std::function<void(attempt_result)> done) {
    auto a = std::make_shared<tls_attempt>(ex, name, options, std::move(on_end), std::move(done));
    a->start(server, deadline);
    return a;
}

}  // namespace npipe::detail::remote
