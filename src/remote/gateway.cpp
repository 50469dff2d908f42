#include "npipe/gateway.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <fstream>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "npipe/printable.hpp"
#include "platform/posix/local_socket.hpp"
#include "remote/address.hpp"
#include "remote/pump.hpp"
#include "remote/remote_protocol.hpp"
#include "remote/tls.hpp"

namespace npipe {

using namespace detail::remote;

std::string read_token_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw pipe_error(std::error_code(errno ? errno : ENOENT, std::system_category()), "",
                         "read token file " + path);
    std::ostringstream content;
    content << in.rdbuf();
    std::string token = content.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ' ||
                              token.back() == '\t'))
        token.pop_back();
    if (token.empty())
        throw pipe_error(errc::invalid_argument, "", "read token file " + path + ": it is empty");
    if (token.size() > max_token)
        throw pipe_error(
            errc::invalid_argument, "",
            "read token file " + path + ": longer than " + std::to_string(max_token) + " bytes");
    return token;
}

namespace {

using digest = std::array<unsigned char, 32>;

digest sha256(std::string_view s) {
    digest d{};
    unsigned int len = 0;
    EVP_Digest(s.data(), s.size(), d.data(), &len, EVP_sha256(), nullptr);
    return d;
}

// "uid 65534 (nobody)", for the log.
std::string describe_user(uid_t uid) {
    std::string text = "uid " + std::to_string(uid);
    passwd entry{};
    passwd* found = nullptr;
    std::array<char, 1024> buffer{};
    if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found)
        text += std::string(" (") + found->pw_name + ")";
    return text;
}

}  // namespace

// Handlers refer to the gateway by plain pointer, never by shared_ptr: the gateway owns the
// io_context, so a handler owning the gateway would be a cycle (a stop() posted after run()
// returned would keep everything alive). Destroying the io_context destroys every pending
// handler, and with them every connection, before the rest of the gateway goes.
struct gateway::impl {
    struct connection;

    gateway_options options;
    digest token_digest{};
    std::unordered_set<connection*> connections;  // outlives io (declared first)
    ssl_ctx_ptr ctx;
    ::asio::io_context io{1};
    ::asio::ip::tcp::acceptor acceptor{io};
    ::asio::steady_timer accept_pause{io};
    std::atomic<bool> stopping{false};
    unsigned accept_failures = 0;  ///< accepts failed in a row (EMFILE and the like)
    /// Connections not yet authenticated (in the TLS handshake or the request), oldest first,
    /// and how many of them each source address has: the limits evict from here.
    std::list<connection*> pending;
    std::unordered_map<std::string, std::size_t> pending_per_address;
    std::size_t max_pending = 0;  ///< options.max_handshakes, capped by the descriptor limit

    void log(const std::string& line) {
        if (options.log)
            options.log(line);
    }

    void accept();     // accepts the next client when there is room for its handshake
    void take_one();   // accepts the next client
    bool make_room();  // evicts one pending connection if one is old enough
    // How long a connection must have been pending before a limit may evict it.
    std::chrono::milliseconds eviction_age() const {
        return std::min<std::chrono::milliseconds>(options.handshake_timeout,
                                                   std::chrono::seconds(1));
    }
};

struct gateway::impl::connection : std::enable_shared_from_this<connection> {
    connection(impl& g, ::asio::ip::tcp::socket socket, ssl_ptr ssl, std::string address_)
        : gw(g),
          tls(std::make_shared<tls_socket>(std::move(socket), std::move(ssl))),
          timer(gw.io),
          address(std::move(address_)) {
        std::error_code ec;
        auto ep = tls->socket().remote_endpoint(ec);
        peer = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
        gw.connections.insert(this);
        pending_at = gw.pending.insert(gw.pending.end(), this);
        ++gw.pending_per_address[address];
    }
    ~connection() {
        authenticated();
        gw.connections.erase(this);
    }

    impl& gw;
    std::shared_ptr<tls_socket> tls;
    ::asio::steady_timer timer;
    std::string peer;
    std::array<std::byte, request_header_size + max_pipe_name + max_token> request_bytes{};
    std::size_t have = 0;
    std::array<std::byte, answer_size> answer_bytes{};
    std::weak_ptr<pump> forwarding;
    bool answered = false;
    bool dropped = false;  ///< closed by us (timeout, eviction): the failure that follows is ours
    std::string address;   ///< the source address, without the port
    std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
    std::optional<std::list<connection*>::iterator> pending_at;  ///< while unauthenticated

    // Leaves the pending list: the connection no longer counts against the handshake limits.
    void authenticated() {
        if (!pending_at)
            return;
        gw.pending.erase(*pending_at);
        pending_at.reset();
        if (auto it = gw.pending_per_address.find(address);
            it != gw.pending_per_address.end() && --it->second == 0)
            gw.pending_per_address.erase(it);
    }

    // Ends an unauthenticated connection for a reason of ours, logged once.
    void drop(const std::string& why) {
        authenticated();
        if (dropped)
            return;
        dropped = true;
        gw.log(peer + ": dropped: " + why);
        close();
    }

    void start() {
        gw.log(peer + ": accepted");
        limit_handshake(gw.options.handshake_timeout);
        tls->async_ssl([this] { return SSL_accept(tls->ssl()); },
                       [this](int result, int error) {
                           if (result <= 0) {
                               if (dropped)
                                   return;
                               std::string why;
                               auto ec = tls->failure(error, &why);
                               gw.log(peer + ": refused: TLS handshake failed: " +
                                      (why.empty() ? ec.message() : why));
                               close();
                               return;
                           }
                           read_request();
                       },
                       shared_from_this());
    }

    // (Re)arms the handshake deadline: `within` from now.
    void limit_handshake(std::chrono::milliseconds within) {
        timer.expires_after(within);
        timer.async_wait([self = shared_from_this()](const std::error_code& ec) {
            if (!ec && !self->answered)
                self->drop("no request within the handshake timeout");
        });
    }

    void close() {
        timer.cancel();
        std::error_code ignored;
        tls->socket().shutdown(::asio::socket_base::shutdown_both, ignored);
        tls->socket().close(ignored);
    }

    void read_request() {
        std::size_t want = request_header_size - std::min(have, request_header_size);
        if (want == 0) {
            std::size_t name = std::size_t(request_bytes[6]) | std::size_t(request_bytes[7]) << 8;
            std::size_t token = std::size_t(request_bytes[8]) | std::size_t(request_bytes[9]) << 8;
            want = request_header_size + name + token - have;
        }
        tls->async_ssl(
            [this, want] {
                return SSL_read(tls->ssl(), request_bytes.data() + have, static_cast<int>(want));
            },
            [this](int n, int error) {
                if (n <= 0) {
                    if (!dropped)
                        gw.log(peer + ": dropped: " + tls->failure(error).message() +
                               " before the request was complete");
                    close();
                    return;
                }
                have += static_cast<std::size_t>(n);
                request r;
                std::size_t consumed = 0;
                status why = status::bad_request;
                switch (parse_request(std::span(request_bytes.data(), have), r, consumed, why)) {
                    case parse_result::need_more:
                        read_request();
                        return;
                    case parse_result::invalid:
                        refuse(why, peer + " (malformed request)");
                        return;
                    case parse_result::done:
                        handle(r);
                        return;
                }
            },
            shared_from_this());
    }

    void handle(const request& r) {
        // The name is the peer's, not yet authenticated: escaped, it cannot forge a log line.
        const std::string who = peer + " for '" + printable(r.pipe_name) + "'";
        if (gw.stopping)
            return refuse(status::shutting_down, who);
        if (!gw.options.token.empty() &&
            CRYPTO_memcmp(sha256(r.token).data(), gw.token_digest.data(), 32) != 0)
            return refuse(status::bad_token, who);
        if (std::find(gw.options.allow.begin(), gw.options.allow.end(), r.pipe_name) ==
            gw.options.allow.end())
            return refuse(status::not_allowed, who);
        std::string path;
        try {
            path = pipe_path(r.pipe_name);
        } catch (const std::exception&) {
            return refuse(status::bad_request, who);
        }
        std::error_code ec;
        bool message = false;
        auto fd = detail::connect_once(path, ec, SOCK_STREAM);
        if (ec == std::error_code(EPROTOTYPE, std::system_category())) {
            fd = detail::connect_once(path, ec, SOCK_SEQPACKET);
            message = true;
        }
        if (ec) {
            int e = ec.category() == std::system_category() ? ec.value() : 0;
            return refuse(e == ENOENT || e == ECONNREFUSED || e == ENOTDIR ? status::unknown_pipe
                          : e == EAGAIN                                    ? status::pipe_busy
                                                                           : status::gateway_error,
                          who + " (" + ec.message() + ")");
        }
        // Whoever serves the name gets the remote client's bytes: only our own user's server
        // (or an allowed owner's) may, not another local user's that took the name while
        // the real server was down. The listener's credentials, not the file's owner, say who.
        ucred server{};
        socklen_t len = sizeof server;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &server, &len) != 0)
            return refuse(status::gateway_error, who + " (cannot read the server's credentials)");
        if (server.uid != ::geteuid() &&
            std::find(gw.options.allow_owners.begin(), gw.options.allow_owners.end(), server.uid) ==
                gw.options.allow_owners.end())
            return refuse(status::not_available,
                          who + " (its server runs as " + describe_user(server.uid) +
                              ", not the gateway's user nor an --allow-owner)");
        auto local = std::make_shared<::asio::generic::stream_protocol::socket>(gw.io);
        local->assign(::asio::generic::stream_protocol(AF_UNIX, 0), fd.release(), ec);
        if (ec)
            return refuse(status::gateway_error, who);
        send_answer({protocol_version, status::ok, message}, [this, who, message, local]() mutable {
            gw.log(who + ": forwarding (" + (message ? "message" : "byte") + " mode)");
            pump_settings settings;
            settings.buffer_size = std::max<std::size_t>(gw.options.buffer_size, 64 * 1024);
            settings.record_size = message ? detail::max_seqpacket_record : 0;
            settings.idle_timeout = gw.options.idle_timeout;
            // The pump owns the connection (through on_done), never the other way round: a
            // pump whose handlers die with the io_context then takes the connection with it.
            auto p = std::make_shared<pump>(
                tls, std::move(*local), settings,
                [self = shared_from_this(), who](std::error_code ec) {
                    self->gw.log(who + ": ended" + (ec ? ": " + ec.message() : std::string()));
                });
            forwarding = p;
            p->start();
        });
    }

    void refuse(status why, const std::string& who) {
        gw.log(who + ": refused: " + describe(why));
        send_answer({protocol_version, why, false}, [this] {
            tls->async_ssl([this] { return SSL_shutdown(tls->ssl()); },
                           [this](int, int) { close(); }, shared_from_this());
        });
    }

    void send_answer(const answer& a, std::function<void()> then) {
        answered = true;
        authenticated();
        timer.cancel();
        answer_bytes = encode_answer(a);
        tls->async_ssl(
            [this] {
                return SSL_write(tls->ssl(), answer_bytes.data(),
                                 static_cast<int>(answer_bytes.size()));
            },
            [this, then = std::move(then)](int n, int error) mutable {
                if (n != static_cast<int>(answer_size)) {
                    gw.log(peer +
                           ": dropped: sending the answer: " + tls->failure(error).message());
                    close();
                    return;
                }
                then();
            },
            shared_from_this());
    }

    void stop() {
        if (auto p = forwarding.lock())
            p->stop(errc::operation_aborted);
        // A client in its handshake gets a moment to finish it and hear "shutting down"; an
        // idle one must not hold the stopping gateway for the whole handshake timeout.
        else if (pending_at)
            limit_handshake(
                std::min<std::chrono::milliseconds>(gw.options.handshake_timeout, stop_grace));
    }
    static constexpr std::chrono::milliseconds stop_grace{2000};
};

void gateway::impl::accept() {
    if (max_pending != 0 && pending.size() >= max_pending) {
        // Full: nothing is evicted before a newcomer is actually waiting in the backlog.
        acceptor.async_wait(
            ::asio::socket_base::wait_read, [self = this](const std::error_code& ec) {
                if (ec == ::asio::error::operation_aborted || self->stopping)
                    return;
                if (!ec && (self->pending.size() < self->max_pending || self->make_room())) {
                    self->take_one();
                    return;
                }
                // Every pending connection is young: take no one until one authenticates or ages.
                self->accept_pause.expires_after(std::chrono::milliseconds(50));
                self->accept_pause.async_wait([self](const std::error_code& e) {
                    if (!e && !self->stopping)
                        self->accept();
                });
            });
        return;
    }
    take_one();
}

void gateway::impl::take_one() {
    acceptor.async_accept([self = this](const std::error_code& ec, ::asio::ip::tcp::socket socket) {
        if (ec == ::asio::error::operation_aborted || self->stopping)
            return;
        if (!ec) {
            if (self->accept_failures != 0) {
                self->log("accept: accepting again after " + std::to_string(self->accept_failures) +
                          " failed attempts");
                self->accept_failures = 0;
            }
            std::error_code ignored;
            auto from = socket.remote_endpoint(ignored);
            std::string address = ignored ? "?" : from.address().to_string();
            socket.non_blocking(true, ignored);
            set_dead_peer_timeout(socket.native_handle(), self->options.dead_peer_timeout);
            ssl_ptr ssl(SSL_new(self->ctx.get()));
            if (ssl && attach_socket(ssl.get(), socket.native_handle())) {
                std::make_shared<connection>(*self, std::move(socket), std::move(ssl),
                                             std::move(address))
                    ->start();
            } else {
                self->log("dropped a client: " + take_ssl_errors());
            }
        } else {
            // Out of descriptors (EMFILE) and the like: the client stays queued; pause
            // instead of spinning on an accept that fails at once, then go on.
            // Logged once per episode: a gateway out of descriptors for minutes must not
            // flood its log.
            if (self->accept_failures++ == 0)
                self->log("accept: " + ec.message() + ": pausing, retrying every 50 ms");
            self->accept_pause.expires_after(std::chrono::milliseconds(50));
            self->accept_pause.async_wait([self](const std::error_code& e) {
                if (!e && !self->stopping)
                    self->accept();
            });
            return;
        }
        self->accept();
    });
}

// Unauthenticated connections must not take every descriptor nor every handshake slot, nor may
// one address take them all; but a burst of genuine clients must not be cut down either. So
// nothing is evicted until the pool of pending handshakes is full, and then only a connection
// pending for `eviction_age`: a genuine client authenticates in a round trip or two, an idle
// one ages. The address with the most pending connections pays first when it is over its own
// limit; when no connection is old enough, accepting waits (the kernel's backlog holds the
// newcomers, at no descriptor of ours) until one authenticates or ages.
bool gateway::impl::make_room() {
    auto old_enough = std::chrono::steady_clock::now() - eviction_age();
    auto evict_oldest = [&](const std::string* of, const char* which) {
        for (auto* c : pending) {
            if (of && c->address != *of)
                continue;
            if (c->since > old_enough)
                return false;  // the oldest is young: so are the others
            // Keep it alive until drop() is done: closing may run its last handler.
            auto keep = c->weak_from_this().lock();
            c->drop(std::string("evicted: too many pending handshakes") + which);
            return true;
        }
        return false;
    };
    const std::string* heaviest = nullptr;
    std::size_t most = 0;
    for (const auto& [address, count] : pending_per_address)
        if (count > most) {
            most = count;
            heaviest = &address;
        }
    if (heaviest && options.max_handshakes_per_address != 0 &&
        most > options.max_handshakes_per_address) {
        std::string address = *heaviest;  // the map entry may go with the evicted connection
        if (evict_oldest(&address,
                         (" (" + address + " holds " + std::to_string(most) + ")").c_str()))
            return true;
    }
    return evict_oldest(nullptr, "");
}

gateway::gateway(gateway_options options) : impl_(std::make_unique<impl>()) {
    auto& g = *impl_;
    g.options = std::move(options);
    auto fail = [](const std::string& what) {
        throw pipe_error(errc::invalid_argument, "", "gateway: " + what);
    };
    if (g.options.client_ca_file.empty() && g.options.token.empty())
        fail("clients must be authenticated: give a client CA (mutual TLS), a token, or both");
    if (g.options.cert_file.empty() || g.options.key_file.empty())
        fail("a certificate and its private key are required");
    if (g.options.token.size() > max_token)
        fail("the token is longer than " + std::to_string(max_token) + " bytes");
    if (!g.options.token.empty())
        g.token_digest = sha256(g.options.token);
    // Pending handshakes may hold at most half the descriptors, so that forwarded connections
    // (two descriptors each) and the listener always find some.
    g.max_pending = g.options.max_handshakes;
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
        auto half = std::max<std::size_t>(static_cast<std::size_t>(files.rlim_cur / 2), 1);
        if (g.max_pending == 0 || g.max_pending > half)
            g.max_pending = half;
    }
    std::string why;
    g.ctx = make_tls13_context(true, why);
    if (!g.ctx)
        fail(why);
    if (SSL_CTX_use_certificate_chain_file(g.ctx.get(), g.options.cert_file.c_str()) != 1)
        fail("load certificate " + g.options.cert_file + ": " + take_ssl_errors());
    if (SSL_CTX_use_PrivateKey_file(g.ctx.get(), g.options.key_file.c_str(), SSL_FILETYPE_PEM) !=
            1 ||
        SSL_CTX_check_private_key(g.ctx.get()) != 1)
        fail("load private key " + g.options.key_file + ": " + take_ssl_errors());
    if (!g.options.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(g.ctx.get(), g.options.client_ca_file.c_str(), nullptr) !=
            1)
            fail("load client CA " + g.options.client_ca_file + ": " + take_ssl_errors());
        SSL_CTX_set_verify(g.ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    auto ep = parse_host_port(g.options.listen, default_port);
    if (!ep)
        fail("listen address '" + g.options.listen + "' is not ADDR:PORT");
    std::error_code ec;
    auto address = ::asio::ip::make_address(ep->host, ec);
    if (ec)
        fail("listen address '" + ep->host + "' is not an IP address");
    ::asio::ip::tcp::endpoint endpoint(address, ep->port);
    g.acceptor.open(endpoint.protocol(), ec);
    if (!ec)
        g.acceptor.set_option(::asio::socket_base::reuse_address(true), ec);
    if (!ec)
        g.acceptor.bind(endpoint, ec);
    if (!ec)
        g.acceptor.listen(::asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw pipe_error(ec, "", "gateway: listen on " + g.options.listen);
}

gateway::~gateway() {
    stop();
}

std::uint16_t gateway::port() const noexcept {
    std::error_code ec;
    auto ep = impl_->acceptor.local_endpoint(ec);
    return ec ? 0 : ep.port();
}

void gateway::run() {
    impl_->accept();
    impl_->io.run();
}

void gateway::stop() {
    // Set here rather than in the posted handler: once stop() has returned, no request is
    // forwarded any more, whatever the io_context has queued before the handler.
    if (impl_->stopping.exchange(true))
        return;
    ::asio::post(impl_->io, [g = impl_.get()] {
        std::error_code ignored;
        g->acceptor.close(ignored);
        g->accept_pause.cancel();
        std::vector<std::shared_ptr<impl::connection>> live;
        for (auto* c : g->connections)
            if (auto p = c->weak_from_this().lock())
                live.push_back(std::move(p));
        for (auto& c : live)
            c->stop();
    });
}

}  // namespace npipe
