// Remote pipes through `npipe gateway` (npipe::remote): TLS 1.3, the remote protocol, byte and
// message mode across the network, refusals, and a dead network noticed in bounded time.
// Certificates are made at test time with the openssl command.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "npipe/errors.hpp"
#include "npipe/gateway.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/pipe_name.hpp"
#include "npipe/remote_options.hpp"
#include "remote_support.hpp"
#include "support/test_support.hpp"

using namespace npipe;
using namespace npipe::test;
using namespace std::chrono_literals;

namespace {

named_pipe_client remote_client(const std::string& server, const std::string& name,
                                std::shared_ptr<remote_options> tls) {
    pipe_options options;
    options.remote = std::move(tls);
    return named_pipe_client(server, name, pipe_direction::in_out, options);
}

// A pattern generated piecewise (xorshift32), so 100 MiB never sits in memory at once.
struct pattern_stream {
    std::uint32_t x;
    explicit pattern_stream(std::uint32_t seed) : x(seed | 1) {}
    void fill(std::byte* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            p[i] = std::byte(x & 0xff);
        }
    }
};

void send_pattern(pipe_stream& pipe, std::size_t size, std::uint32_t seed) {
    pattern_stream gen(seed);
    std::vector<std::byte> buffer(1 << 20);
    for (std::size_t sent = 0; sent < size;) {
        std::size_t n = std::min(buffer.size(), size - sent);
        gen.fill(buffer.data(), n);
        pipe.write(std::span(buffer.data(), n));
        sent += n;
    }
}

// Reads to end of stream; the count of bytes read, and whether all matched the pattern.
std::pair<std::size_t, bool> receive_pattern(pipe_stream& pipe, std::uint32_t seed) {
    pattern_stream gen(seed);
    std::vector<std::byte> buffer(1 << 20), expected(1 << 20);
    std::size_t total = 0;
    bool same = true;
    for (;;) {
        std::size_t n = pipe.read(buffer);
        if (n == 0)
            return {total, same};
        gen.fill(expected.data(), n);
        same = same && std::memcmp(buffer.data(), expected.data(), n) == 0;
        total += n;
    }
}

// 100 MiB each way at once through client <-> gateway <-> server, both checked.
void exchange_100_mib(pipe_stream& client, pipe_stream& server) {
    constexpr std::size_t size = std::size_t{100} << 20;
    auto server_reads = std::async(std::launch::async, [&] { return receive_pattern(server, 11); });
    auto server_writes = std::async(std::launch::async, [&] {
        send_pattern(server, size, 22);
        server.shutdown_write();
    });
    auto client_writes = std::async(std::launch::async, [&] {
        send_pattern(client, size, 11);
        client.shutdown_write();
    });
    auto [got, intact] = receive_pattern(client, 22);
    client_writes.get();
    server_writes.get();
    auto [server_got, server_intact] = server_reads.get();
    EXPECT_EQ(got, size);
    EXPECT_TRUE(intact);
    EXPECT_EQ(server_got, size);
    EXPECT_TRUE(server_intact);
}

std::string read_all(pipe_stream& pipe) {
    std::string out;
    char buffer[4096];
    for (;;) {
        std::size_t n = pipe.read(std::as_writable_bytes(std::span(buffer)));
        if (n == 0)
            return out;
        out.append(buffer, n);
    }
}

void write_text(pipe_stream& pipe, std::string_view text) {
    pipe.write(std::as_bytes(std::span(text.data(), text.size())));
}

TEST(Remote, ByteMode100MiBEachWayOnLoopback) {
    auto name = unique_pipe_name("bulk");
    named_pipe_server server(name);
    running_gateway gw(base_options({name}));
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    auto accepted = std::async(std::launch::async, [&] { server.wait_for_connection(); });
    client.connect(10s);
    accepted.get();
    EXPECT_EQ(client.transmission_mode(), transmission_mode::byte);
    exchange_100_mib(client, server);
    EXPECT_TRUE(client.end_of_stream());
}

TEST(Remote, HalfCloseBothWaysAndReadByte) {
    auto name = unique_pipe_name("half");
    named_pipe_server server(name);
    running_gateway gw(base_options({name}));
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    client.connect(10s);
    server.wait_for_connection(10s);
    write_text(client, "question");
    client.shutdown_write();  // a close_notify on the wire; the client still reads
    EXPECT_FALSE(client.can_write());
    EXPECT_EQ(read_all(server), "question");
    write_text(server, "answer");
    server.write_byte(7);
    server.shutdown_write();
    std::string got;
    for (int i = 0; i < 6; ++i)
        got += static_cast<char>(client.read_byte());
    EXPECT_EQ(got, "answer");
    EXPECT_EQ(client.read_byte(), 7);
    EXPECT_EQ(client.read_byte(), -1);
    EXPECT_TRUE(client.end_of_stream());
}

TEST(Remote, ServerCloseIsEndOfStreamAndLaterWritesBreak) {
    auto name = unique_pipe_name("close");
    named_pipe_server server(name);
    running_gateway gw(base_options({name}));
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    client.connect(10s);
    server.wait_for_connection(10s);
    write_text(server, "bye");
    server.disconnect();
    EXPECT_EQ(read_all(client), "bye");
    std::error_code ec;
    std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 200 && !ec; ++i)
        client.write(std::as_bytes(std::span(chunk.data(), chunk.size())), ec);
    EXPECT_EQ(ec, errc::broken_pipe);
}

std::size_t entries(const char* dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir))
        ++n;
    return n;
}

TEST(Remote, ClosedPipeLeavesNoThreadNorDescriptor) {
    auto name = unique_pipe_name("owned");
    named_pipe_server server(name);
    running_gateway gw(base_options({name}));
    const auto tasks_before = entries("/proc/self/task");
    const auto fds_before = entries("/proc/self/fd");
    {
        auto client = remote_client(at_port(gw.port()), name, client_tls());
        client.connect(10s);
        server.wait_for_connection(10s);
        EXPECT_EQ(entries("/proc/self/task"), tasks_before + 1);  // the relay
        write_text(client, "last words");
        client.close();
        // close() has wound the relay down: its thread is gone, and what was written
        // before the close arrived in full.
        EXPECT_EQ(entries("/proc/self/task"), tasks_before);
        EXPECT_EQ(read_all(server), "last words");
        server.disconnect();
    }
    ASSERT_TRUE(gw.wait_log(name + "': ended")) << gw.log();
    EXPECT_EQ(entries("/proc/self/task"), tasks_before);
    EXPECT_EQ(entries("/proc/self/fd"), fds_before);
}

TEST(Remote, DestroyedWhileReadingInAnotherThreadJoinsTheRelay) {
    auto name = unique_pipe_name("owned2");
    named_pipe_server server(name);
    running_gateway gw(base_options({name}));
    const auto tasks_before = entries("/proc/self/task");
    {
        auto client = remote_client(at_port(gw.port()), name, client_tls());
        client.connect(10s);
        server.wait_for_connection(10s);
        std::promise<void> reading;
        auto reader = std::async(std::launch::async, [&] {
            reading.set_value();
            std::error_code ec;
            std::byte b[16];
            return client.read(b, ec);
        });
        reading.get_future().get();
        client.close();  // wakes the reader whether or not it is inside read() yet
        EXPECT_EQ(reader.get(), 0u);
    }
    EXPECT_EQ(entries("/proc/self/task"), tasks_before);
}

TEST(Remote, MessageModeKeepsBoundaries) {
    auto name = unique_pipe_name("msg");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    running_gateway gw(base_options({name}));
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    client.connect(10s);
    server.wait_for_connection(10s);
    ASSERT_EQ(client.transmission_mode(), transmission_mode::message);
    client.set_read_mode(transmission_mode::message);
    const std::vector<std::size_t> sizes = {1, 0, 5, 70'000, 3 << 20, 0, 65'536, 2};
    auto echo = std::async(std::launch::async, [&] {
        std::vector<std::byte> buffer(4 << 20);
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            std::size_t n = server.read(buffer);  // message read mode: one whole message
            EXPECT_TRUE(server.is_message_complete());
            EXPECT_EQ(n, sizes[i]);
            server.write(std::span(buffer.data(), n));
        }
    });
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        std::vector<std::byte> message(sizes[i]);
        pattern_stream(static_cast<std::uint32_t>(i + 1)).fill(message.data(), message.size());
        client.write(message);
    }
    std::vector<std::byte> buffer(4 << 20);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        std::size_t n = client.read(buffer);
        EXPECT_TRUE(client.is_message_complete()) << i;
        ASSERT_EQ(n, sizes[i]) << "message " << i;
        std::vector<std::byte> expected(sizes[i]);
        pattern_stream(static_cast<std::uint32_t>(i + 1)).fill(expected.data(), expected.size());
        EXPECT_TRUE(std::equal(expected.begin(), expected.end(), buffer.begin())) << i;
    }
    echo.get();
    // A message cut by a small buffer: the rest follows, and completion says where it ends.
    server.write(std::vector<std::byte>(10, std::byte{1}));
    std::byte small[4];
    EXPECT_EQ(client.read(small), 4u);
    EXPECT_FALSE(client.is_message_complete());
    EXPECT_EQ(client.read(std::span(buffer.data(), 100)), 6u);
    EXPECT_TRUE(client.is_message_complete());
}

TEST(Remote, ManyClientsAtOnceOnTheGatewaysOneThread) {
    constexpr int clients = 300;
    auto name = unique_pipe_name("many");
    running_gateway gw(base_options({name}));
    std::vector<named_pipe_server> instances;
    auto accepting = std::async(std::launch::async, [&] {
        for (int i = 0; i < clients; ++i) {
            instances.emplace_back(name, pipe_direction::in_out, max_allowed_server_instances);
            instances.back().wait_for_connection(20s);
        }
    });
    auto tls = client_tls();
    std::vector<named_pipe_client> connected;
    for (int i = 0; i < clients; ++i) {
        connected.push_back(remote_client(at_port(gw.port()), name, tls));
        connected.back().connect(20s);
    }
    accepting.get();
    // Every connection is open at once; each carries its own bytes both ways.
    for (int i = 0; i < clients; ++i) {
        write_text(connected[i], "client " + std::to_string(i));
        connected[i].shutdown_write();
    }
    for (auto& server : instances) {
        auto got = read_all(server);
        write_text(server, "echo " + got);
        server.disconnect();
    }
    for (int i = 0; i < clients; ++i)
        EXPECT_EQ(read_all(connected[i]), "echo client " + std::to_string(i));
}

TEST(Remote, IdleTimeoutEndsAQuietConnectionWithAnError) {
    auto name = unique_pipe_name("idle");
    named_pipe_server server(name);
    auto options = base_options({name});
    options.idle_timeout = 300ms;
    running_gateway gw(options);
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    client.connect(10s);
    server.wait_for_connection(10s);
    auto start = std::chrono::steady_clock::now();
    std::byte buffer[16];
    std::error_code ec;
    EXPECT_EQ(client.read(buffer, ec), 0u);
    EXPECT_EQ(ec, errc::broken_pipe) << ec.message();  // no close_notify: not a clean end
    EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
    EXPECT_TRUE(gw.wait_log("ended: " + std::error_code(errc::timed_out).message())) << gw.log();
}

TEST(Remote, ConnectTimeoutCoversASilentServer) {
    // A TCP listener that never speaks: the handshake must give up at the connect timeout.
    silent_listener silent;
    auto client = remote_client(at_port(silent.port()), "x", client_tls());
    auto start = std::chrono::steady_clock::now();
    std::error_code ec;
    client.connect(300ms, ec);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 5s);
}

// What a refused client gets: its error, the gateway's log line, and no connection forwarded.
struct refusal {
    std::error_code code;
    std::string what;
};

refusal connect_refused(named_pipe_client& client, std::chrono::milliseconds timeout = 10s) {
    try {
        client.connect(timeout);
    } catch (const pipe_error& e) {
        return {e.code(), e.what()};
    }
    return {};
}

class RemoteRefusal : public ::testing::Test {
  protected:
    void SetUp() override {
        name_ = unique_pipe_name("guard");
        server_ = std::make_unique<named_pipe_server>(name_);
        auto options = base_options({name_});
        options.client_ca_file = certs().at("client_ca.pem");
        gw_ = std::make_unique<running_gateway>(options);
    }
    void TearDown() override {
        if (forwarded_)
            return;
        // Nothing reached the pipe's server: no client was ever forwarded to it.
        std::error_code ec;
        server_->wait_for_connection(0ms, ec);
        EXPECT_EQ(ec, errc::timed_out) << "a refused client reached the pipe";
        EXPECT_EQ(gw_->log().find("forwarding"), std::string::npos) << gw_->log();
    }
    std::shared_ptr<remote_options> with_cert(const std::string& cert, const std::string& key) {
        auto tls = client_tls();
        tls->cert_file = certs().at(cert);
        tls->key_file = certs().at(key);
        return tls;
    }
    std::string name_;
    bool forwarded_ = false;  ///< the test connected on purpose
    std::unique_ptr<named_pipe_server> server_;
    std::unique_ptr<running_gateway> gw_;
};

TEST_F(RemoteRefusal, GoodCertificateAndTokenIsForwarded) {
    auto client = remote_client(at_port(gw_->port()), name_, with_cert("client.pem", "client.key"));
    client.connect(10s);
    server_->wait_for_connection(10s);
    write_text(client, "hi");
    client.shutdown_write();
    EXPECT_EQ(read_all(*server_), "hi");
    server_->disconnect();
    EXPECT_EQ(read_all(client), "");
    forwarded_ = true;
}

TEST_F(RemoteRefusal, GatewayCertificateFromAnotherCa) {
    auto tls = with_cert("client.pem", "client.key");
    tls->ca_file = certs().at("other_ca.pem");
    auto client = remote_client(at_port(gw_->port()), name_, tls);
    auto r = connect_refused(client);
    EXPECT_EQ(r.code, errc::access_denied);
    EXPECT_NE(r.what.find("gateway's certificate is not trusted"), std::string::npos) << r.what;
    EXPECT_TRUE(gw_->wait_log("refused: TLS handshake failed")) << gw_->log();
}

TEST_F(RemoteRefusal, ClientCertificateFromAnotherCa) {
    // Signed by the CA that signed the gateway, which the gateway does not take for clients.
    auto client =
        remote_client(at_port(gw_->port()), name_, with_cert("gateway.pem", "gateway.key"));
    auto r = connect_refused(client);
    EXPECT_EQ(r.code, errc::access_denied);
    EXPECT_NE(r.what.find("unknown ca"), std::string::npos) << r.what;
    EXPECT_TRUE(gw_->wait_log("refused: TLS handshake failed")) << gw_->log();
}

TEST_F(RemoteRefusal, ExpiredClientCertificate) {
    auto client =
        remote_client(at_port(gw_->port()), name_, with_cert("expired.pem", "expired.key"));
    auto r = connect_refused(client);
    EXPECT_EQ(r.code, errc::access_denied);
    EXPECT_NE(r.what.find("certificate expired"), std::string::npos) << r.what;
    EXPECT_TRUE(gw_->wait_log("refused: TLS handshake failed")) << gw_->log();
}

TEST_F(RemoteRefusal, SelfSignedClientCertificate) {
    auto client = remote_client(at_port(gw_->port()), name_, with_cert("self.pem", "self.key"));
    auto r = connect_refused(client);
    EXPECT_EQ(r.code, errc::access_denied);
    EXPECT_NE(r.what.find("the gateway refused the TLS connection"), std::string::npos) << r.what;
    EXPECT_TRUE(gw_->wait_log("refused: TLS handshake failed")) << gw_->log();
}

TEST_F(RemoteRefusal, NoClientCertificate) {
    auto client = remote_client(at_port(gw_->port()), name_, client_tls());
    auto r = connect_refused(client);
    EXPECT_EQ(r.code, errc::access_denied);
    EXPECT_NE(r.what.find("certificate required"), std::string::npos) << r.what;
}

TEST_F(RemoteRefusal, WrongToken) {
    auto tls = with_cert("client.pem", "client.key");
    tls->token = "s3cret-tokeN";
    auto client = remote_client(at_port(gw_->port()), name_, tls);
    auto r = connect_refused(client);
    EXPECT_EQ(r.code, errc::access_denied);
    EXPECT_NE(r.what.find("the gateway refused the token"), std::string::npos) << r.what;
    EXPECT_TRUE(gw_->wait_log("refused: the gateway refused the token")) << gw_->log();
}

TEST_F(RemoteRefusal, PipeNotAllowed) {
    auto other = unique_pipe_name("hidden");
    named_pipe_server hidden(other);
    auto client = remote_client(at_port(gw_->port()), other, with_cert("client.pem", "client.key"));
    auto r = connect_refused(client);
    EXPECT_EQ(r.code, errc::access_denied);
    EXPECT_NE(r.what.find("not in --allow"), std::string::npos) << r.what;
    std::error_code ec;
    hidden.wait_for_connection(0ms, ec);
    EXPECT_EQ(ec, errc::timed_out);
}

TEST_F(RemoteRefusal, UnknownPipe) {
    gw_.reset();
    auto options = base_options({"npipe-test-no-such-pipe"});
    options.client_ca_file = certs().at("client_ca.pem");
    gw_ = std::make_unique<running_gateway>(options);
    auto client = remote_client(at_port(gw_->port()), "npipe-test-no-such-pipe",
                                with_cert("client.pem", "client.key"));
    // No wait asked for: the gateway's answer at once, naming the host and the pipe.
    auto r = connect_refused(client, 0ms);
    EXPECT_EQ(r.code, std::errc::no_such_file_or_directory);
    EXPECT_NE(r.what.find("no such pipe"), std::string::npos) << r.what;
    EXPECT_NE(r.what.find("//" + at_port(gw_->port()) + "/pipe/npipe-test-no-such-pipe"),
              std::string::npos)
        << r.what;
    // A short wait: retried until the deadline, then a timeout that still says why.
    auto start = std::chrono::steady_clock::now();
    r = connect_refused(client, 300ms);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.code, errc::timed_out);
    EXPECT_NE(r.what.find("no such pipe"), std::string::npos) << r.what;
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 5s);
    EXPECT_GE(count_of(gw_->log(), "refused: no such pipe"), 3) << gw_->log();
}

TEST_F(RemoteRefusal, PlaintextClient) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(gw_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    // A request in the clear, as if TLS were not there.
    std::string request = "NPRQ\x01";
    request += std::string("\0", 1) + char(name_.size()) + std::string("\0\0\0", 3) + name_;
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    // The gateway answers with at most a TLS alert record (content type 21), then closes.
    std::string reply;
    char buffer[512];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;)
        reply.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    EXPECT_TRUE(reply.empty() || reply[0] == 21) << reply.size();
    EXPECT_EQ(reply.find("NPAN"), std::string::npos);
    EXPECT_TRUE(gw_->wait_log("refused: TLS handshake failed")) << gw_->log();
}

TEST(Remote, ConnectWaitsForAPipeThatDoesNotExistYet) {
    auto name = unique_pipe_name("later");
    running_gateway gw(base_options({name}));
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    auto connected = std::async(std::launch::async, [&] { client.connect(20s); });
    // The client has been told "no such pipe" and keeps asking; then the server appears.
    ASSERT_TRUE(gw.wait_log("refused: no such pipe")) << gw.log();
    named_pipe_server server(name);
    server.wait_for_connection(20s);
    connected.get();
    write_text(server, "finally");
    server.disconnect();
    EXPECT_EQ(read_all(client), "finally");
}

// A listener whose backlog is full: the gateway's connect gets EAGAIN, "pipe busy".
class full_listener {
  public:
    explicit full_listener(const std::string& name) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        path_ = pipe_path(name);
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(fd_, 0) != 0)
            ADD_FAILURE() << "listen at " << path_ << ": " << std::strerror(errno);
        for (int i = 0; i < 64; ++i) {
            int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                EXPECT_EQ(errno, EAGAIN);
                ::close(c);
                return;
            }
            fillers_.push_back(c);
        }
        ADD_FAILURE() << "the backlog never filled";
    }
    ~full_listener() {
        for (int c : fillers_)
            ::close(c);
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    // Accepts one queued connection: room for one more.
    int accept_one() { return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC); }
    // Accepts a queued connection without waiting; -1 when none is queued.
    int accept_queued() {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, 0) == 1 ? accept_one() : -1;
    }

  private:
    int fd_ = -1;
    std::string path_;
    std::vector<int> fillers_;
};

TEST(Remote, PipeBusyIsItsOwnErrorAndAWaitingConnectGetsThrough) {
    auto name = unique_pipe_name("busy");
    full_listener listener(name);
    running_gateway gw(base_options({name}));
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    auto r = connect_refused(client, 0ms);
    EXPECT_EQ(r.code, errc::all_instances_busy);
    EXPECT_NE(r.what.find("the pipe's server is busy"), std::string::npos) << r.what;
    // With time to wait, the client keeps asking until an instance frees up, as .NET's
    // Connect does for a busy pipe.
    auto connected = std::async(std::launch::async, [&] { client.connect(20s); });
    ASSERT_TRUE(gw.wait_log("refused: the pipe's server is busy", 10s, 2)) << gw.log();
    int first = listener.accept_one();  // a filler: now the gateway's connect fits
    ASSERT_GE(first, 0);
    ::close(first);
    connected.get();
    write_text(client, "through");
    client.shutdown_write();
    // The listener's queue holds what is left of the fillers, then the gateway's connection.
    int last = -1;
    for (int fd; (fd = listener.accept_queued()) >= 0;) {
        if (last >= 0)
            ::close(last);
        last = fd;
    }
    ASSERT_GE(last, 0);
    std::string got;
    char buffer[64];
    for (ssize_t n; (n = ::recv(last, buffer, sizeof buffer, 0)) > 0;)
        got.append(buffer, std::size_t(n));
    ::close(last);
    EXPECT_EQ(got, "through");
}

TEST(Remote, GatewayShuttingDownIsItsOwnError) {
    auto name = unique_pipe_name("stopping");
    named_pipe_server server(name);
    std::mutex m;
    std::condition_variable cv;
    bool hold = false, held = false;
    std::unique_ptr<running_gateway> gw;
    gw = std::make_unique<running_gateway>(
        base_options({name}), std::function<void()>{}, [&](std::string_view line) {
            if (line.find(": accepted") == std::string_view::npos)
                return;
            std::unique_lock lock(m);
            if (!hold)
                return;
            held = true;
            cv.notify_all();
            cv.wait(lock, [&] { return !hold; });
        });
    {
        std::lock_guard lock(m);
        hold = true;
    }
    auto client = remote_client(at_port(gw->port()), name, client_tls());
    auto r = std::async(std::launch::async, [&] { return connect_refused(client); });
    {
        // The gateway has accepted the client and is held before the handshake: a stop now
        // is handled before the client's request can be read.
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return held; });
        gw->stop();
        hold = false;
        cv.notify_all();
    }
    auto refused = r.get();
    EXPECT_EQ(refused.code, std::errc::connection_refused);
    EXPECT_NE(refused.what.find("the gateway is shutting down"), std::string::npos) << refused.what;
    EXPECT_TRUE(gw->wait_log("refused: the gateway is shutting down")) << gw->log();
    std::error_code ec;
    server.wait_for_connection(0ms, ec);
    EXPECT_EQ(ec, errc::timed_out) << "a client reached the pipe through a stopping gateway";
}

TEST(Remote, GatewayNeedsSomeClientAuthentication) {
    auto options = base_options({"x"});
    options.token.clear();
    EXPECT_THROW(gateway{options}, pipe_error);
}

TEST(Remote, DotNetServerBehindTheGateway) {
    NPIPE_REQUIRE_MONO();
    auto name = unique_pipe_name("mono");
    auto exe = csharp_program("BulkPeer");
    child server(mono_command(exe, {"server", name, "send", "3000000", "5"}));
    ASSERT_TRUE(wait_for_server(name, 60s));
    running_gateway gw(base_options({name}));
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    client.connect(10s);
    EXPECT_EQ(client.transmission_mode(), transmission_mode::byte);
    EXPECT_EQ(read_all(client), pattern(3000000, 5));
    EXPECT_EQ(server.wait(30s), 0);
    EXPECT_NE(server.out().find("sent 3000000"), std::string::npos) << server.out();
}

#ifdef NPIPE_CLI_HAS_REMOTE
// `npipe gateway` exposing `name` with the test certificates and token, on a free port.
std::vector<std::string> cli_gateway_command(const std::string& name) {
    return {cli(),          "gateway",
            "--listen",     "127.0.0.1:0",
            "--cert",       certs().at("gateway.pem"),
            "--key",        certs().at("gateway.key"),
            "--token-file", certs().at("token"),
            "--allow",      name};
}

// The port a CLI gateway printed it listens on ("" if it printed none within 10 s).
std::string cli_gateway_port(child& gw) {
    if (!gw.wait_for_output("\n", 10s))
        return "";
    auto out = gw.out();
    auto at = out.find("port ");
    if (at == std::string::npos)
        return "";
    return out.substr(at + 5, out.find_first_not_of("0123456789", at + 5) - at - 5);
}

// `npipe gateway` and `npipe connect --server` / `npipe connect //HOST/pipe/NAME`.
TEST(RemoteCli, GatewayAndConnect) {
    auto name = unique_pipe_name("cli");
    named_pipe_server server(name, pipe_direction::in_out, 2);
    child gw(cli_gateway_command(name));
    auto port = cli_gateway_port(gw);
    ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
    auto peer = std::async(std::launch::async, [&] {
        std::string got;
        for (int i = 0; i < 2; ++i) {
            server.wait_for_connection(20s);
            got += read_all(server);
            write_text(server, "pong");
            server.disconnect();
        }
        return got;
    });
    auto first =
        run({cli(), "connect", name, "--server", "127.0.0.1:" + port, "--ca", certs().at("ca.pem"),
             "--token-file", certs().at("token"), "--timeout", "10000"},
            "ping1");
    EXPECT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(first.out, "pong");
    auto second = run({cli(), "connect", "//localhost:" + port + "/pipe/" + name, "--ca",
                       certs().at("ca.pem"), "--token-file", certs().at("token")},
                      "ping2");
    EXPECT_EQ(second.exit_code, 0) << second.err;
    EXPECT_EQ(second.out, "pong");
    EXPECT_EQ(peer.get(), "ping1ping2");
    auto refused = run({cli(), "connect", "//127.0.0.1:" + port + "/pipe/not-exposed", "--ca",
                        certs().at("ca.pem"), "--token-file", certs().at("token")},
                       "x");
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("not in --allow"), std::string::npos) << refused.err;
    // SIGTERM stops the gateway cleanly: exit status 0 (under the sanitizers: nothing leaked).
    ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
    EXPECT_EQ(gw.wait(20s), 0) << gw.err();
}
#endif

// Two network namespaces joined by a veth pair: 10.231.0.1 (gateway side) and 10.231.0.2.
class network_namespaces {
  public:
    network_namespaces() {
        auto id = std::to_string(::getpid());
        a_ = "npipe-t" + id + "a";
        b_ = "npipe-t" + id + "b";
        std::string va = "npv" + id + "a", vb = "npv" + id + "b";
        vb_ = vb;
        ok_ = sh("ip netns add " + a_) && sh("ip netns add " + b_) &&
              sh("ip link add " + va + " netns " + a_ + " type veth peer name " + vb + " netns " +
                 b_) &&
              sh("ip -n " + a_ + " addr add 10.231.0.1/30 dev " + va) &&
              sh("ip -n " + b_ + " addr add 10.231.0.2/30 dev " + vb) &&
              sh("ip -n " + a_ + " link set " + va + " up") &&
              sh("ip -n " + b_ + " link set " + vb + " up") &&
              sh("ip -n " + a_ + " link set lo up") && sh("ip -n " + b_ + " link set lo up");
    }
    ~network_namespaces() {
        // Deleting a namespace deletes its end of the veth pair, and so the pair.
        sh("ip netns del " + a_ + " 2>/dev/null");
        sh("ip netns del " + b_ + " 2>/dev/null");
    }
    bool ok() const { return ok_; }
    const std::string& a() const { return a_; }
    const std::string& b() const { return b_; }
    bool cut_link() { return sh("ip -n " + b_ + " link set " + vb_ + " down"); }
    std::string error() const { return error_; }

    // Moves the calling thread (only it) into namespace `ns`.
    static bool enter(const std::string& ns) {
        int fd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return false;
        bool ok = ::setns(fd, CLONE_NEWNET) == 0;
        ::close(fd);
        return ok;
    }

  private:
    bool sh(const std::string& command) {
        auto r = run({"sh", "-c", command});
        if (r.exit_code != 0)
            error_ += command + ": " + r.err + "\n";
        return r.exit_code == 0;
    }
    std::string a_, b_, vb_, error_;
    bool ok_ = false;
};

// Connects on a thread inside namespace `ns`: the TCP socket is made there.
void connect_from(const std::string& ns, named_pipe_client& client) {
    std::async(std::launch::async, [&] {
        ASSERT_TRUE(network_namespaces::enter(ns));
        client.connect(20s);
    }).get();
}

#ifdef NPIPE_CLI_HAS_REMOTE
// A TCP connection to the gateway that never says a word, from `source` (a loopback address).
class idle_connection {
  public:
    explicit idle_connection(const std::string& port, const char* source = nullptr) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        if (source) {
            ::inet_pton(AF_INET, source, &addr.sin_addr);
            if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
                return;
        }
        addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
        ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~idle_connection() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    idle_connection(const idle_connection&) = delete;
    idle_connection& operator=(const idle_connection&) = delete;
    bool ok() const { return ok_; }
    // Whether the gateway has closed it, waiting up to `timeout` for that.
    bool closed_by_gateway(std::chrono::milliseconds timeout = 0ms) const {
        pollfd p{fd_, POLLIN | POLLRDHUP, 0};
        return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
    }

  private:
    int fd_ = -1;
    bool ok_ = false;
};

using idle_connections = std::vector<std::unique_ptr<idle_connection>>;

std::vector<std::string> operator+(std::vector<std::string> a, std::vector<std::string> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// CPU time (user + system) a process has used, in seconds.
double cpu_seconds_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(content.substr(content.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14)
            utime = std::stoull(field);
        if (i == 15)
            stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Out of descriptors, the gateway pauses accepting (without spinning) and recovers. The
// descriptors are exhausted deterministically: with a low limit, silent TCP connections are
// opened one at a time until the gateway says it pauses (each one it accepts costs it a
// descriptor), whatever the machine's load or the descriptors the gateway happens to hold.
TEST(RemoteCli, GatewayOutOfDescriptorsPausesAndRecovers) {
    auto name = unique_pipe_name("emfile");
    named_pipe_server server(name);
    child gw(cli_gateway_command(name) + std::vector<std::string>{"--handshake-timeout", "600"});
    auto port = cli_gateway_port(gw);
    ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
    int open_now = 0;
    for ([[maybe_unused]] auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(gw.pid()) + "/fd"))
        ++open_now;
    rlimit old_limit{};
    ASSERT_EQ(::prlimit(gw.pid(), RLIMIT_NOFILE, nullptr, &old_limit), 0);
    rlimit low = old_limit;
    low.rlim_cur = static_cast<rlim_t>(open_now + 8);
    ASSERT_EQ(::prlimit(gw.pid(), RLIMIT_NOFILE, &low, nullptr), 0);

    const std::string pausing = "Too many open files: pausing";
    idle_connections idle;
    bool paused = false;
    for (int i = 1; i <= 200 && !paused; ++i) {
        idle.push_back(std::make_unique<idle_connection>(port));
        ASSERT_TRUE(idle.back()->ok());
        // Accepted (one descriptor more), or refused for want of one.
        auto until = std::chrono::steady_clock::now() + 30s;
        for (;;) {
            auto err = gw.err();
            paused = err.find(pausing) != std::string::npos;
            if (paused || count_of(err, ": accepted") >= i)
                break;
            ASSERT_LT(std::chrono::steady_clock::now(), until) << err;
            std::this_thread::sleep_for(5ms);
        }
    }
    ASSERT_TRUE(paused) << gw.err();
    auto client = remote_client("127.0.0.1:" + port, name, client_tls());
    auto connected = std::async(std::launch::async, [&] { client.connect(60s); });
    // Paused, not spinning: over half a second it retries about ten times, using little CPU.
    double before = cpu_seconds_of(gw.pid());
    std::this_thread::sleep_for(500ms);
    double used_cpu = cpu_seconds_of(gw.pid()) - before;
    EXPECT_LT(used_cpu, 0.15) << "the gateway spins while out of descriptors";
    EXPECT_FALSE(gw.wait(0ms).has_value()) << "the gateway exited: " << gw.err();
    // Descriptors come back: the queued client is served.
    ASSERT_EQ(::prlimit(gw.pid(), RLIMIT_NOFILE, &old_limit, nullptr), 0);
    connected.get();
    server.wait_for_connection(30s);
    write_text(client, "hello");
    client.shutdown_write();
    EXPECT_EQ(read_all(server), "hello");
    write_text(server, "world");
    server.disconnect();
    EXPECT_EQ(read_all(client), "world");
    EXPECT_TRUE(gw.wait_for_error("accepting again after", 1, 30s)) << gw.err();
    EXPECT_EQ(count_of(gw.err(), "Too many open files"), 1) << gw.err();
    ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
    EXPECT_EQ(gw.wait(30s), 0) << gw.err();
}
#endif

#ifdef NPIPE_CLI_HAS_REMOTE
// A "kB" field of /proc/PID/status (VmRSS, VmData), in bytes; -1 if absent.
long long status_bytes(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0)
            return std::stoll(line.substr(field.size() + 1)) * 1024;
    return -1;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;  // redzones, shadow and quarantine: not the program's memory
#else
constexpr bool sanitized = false;
#endif

// Idle connections cost the gateway neither forwarding buffer: a direction holds its buffer
// (256 KiB) only while it has data in flight. Each connection first carries 64 KiB each way,
// so its buffers were used, then sits idle; the gateway process's growth is measured.
// Measured here (RelWithDebInfo, 500 or 1,000 clients): about 17 KiB of RSS and of VmData per
// idle connection; before buffers were handed back, 105 KiB of RSS and 537 KiB of VmData (the
// two buffers, 512 KiB whether touched or not). 64 KiB is near four times what a connection
// now costs, an eighth of the two buffers and below the old RSS: holding them fails it.
TEST(RemoteCli, IdleConnectionsHoldNoForwardingBuffers) {
    int clients = 500;
    if (const char* n = std::getenv("NPIPE_IDLE_CLIENTS"))  // for measuring with more
        clients = std::max(1, std::atoi(n));
    constexpr long long bound = 64 * 1024;
    constexpr std::size_t burst = 64 * 1024;
    auto name = unique_pipe_name("idle");
    child gw(cli_gateway_command(name));
    auto port = cli_gateway_port(gw);
    ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
    auto tls = client_tls();
    std::vector<named_pipe_server> instances;
    std::vector<named_pipe_client> connected;
    // The first connection pays for what any gateway pays once (OpenSSL's tables, the
    // allocator's arenas): it is made before the measurement starts.
    auto connect_one = [&](int i) {
        instances.emplace_back(name, pipe_direction::in_out, max_allowed_server_instances);
        auto accepted = std::async(
            std::launch::async, [&server = instances.back()] { server.wait_for_connection(20s); });
        connected.push_back(remote_client("127.0.0.1:" + port, name, tls));
        connected.back().connect(20s);
        accepted.get();
        auto data = pattern(burst, static_cast<std::uint32_t>(i + 1));
        write_text(connected.back(), data);
        ASSERT_EQ(pipe_io::read_n(instances.back(), burst), data);
        write_text(instances.back(), data);
        ASSERT_EQ(pipe_io::read_n(connected.back(), burst), data);
    };
    instances.reserve(static_cast<std::size_t>(clients) + 1);
    connect_one(0);
    if (HasFatalFailure())
        return;
    long long rss_before = status_bytes(gw.pid(), "VmRSS");
    long long data_before = status_bytes(gw.pid(), "VmData");
    for (int i = 1; i <= clients; ++i) {
        connect_one(i);
        if (HasFatalFailure())
            return;
    }
    // All idle now, all still connected.
    long long rss_each = (status_bytes(gw.pid(), "VmRSS") - rss_before) / clients;
    long long data_each = (status_bytes(gw.pid(), "VmData") - data_before) / clients;
    std::cout << "gateway memory per idle connection (" << clients << "): RSS " << rss_each
              << " bytes, VmData " << data_each << " bytes\n";
    if (!sanitized) {
        EXPECT_LT(rss_each, bound);
        EXPECT_LT(data_each, bound);
    }
    // And every one of them still forwards both ways.
    for (int i = 0; i <= clients; ++i) {
        auto text = "again " + std::to_string(i);
        write_text(connected[i], text);
        ASSERT_EQ(pipe_io::read_n(instances[i], text.size()), text);
        write_text(instances[i], "echo " + text);
        instances[i].disconnect();
        ASSERT_EQ(read_all(connected[i]), "echo " + text);
    }
}
#endif

TEST(RemoteNetns, TwoHostsBulkMessagesAndACutLink) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "network namespaces need root (CI runs these as root)";
    network_namespaces hosts;
    ASSERT_TRUE(hosts.ok()) << "ip netns/veth setup failed (apt-get install iproute2):\n"
                            << hosts.error();
    auto name = unique_pipe_name("netns");
    auto options = base_options({name}, "10.231.0.1:0");
    options.dead_peer_timeout = 3s;
    running_gateway gw(options, [&] { ASSERT_TRUE(network_namespaces::enter(hosts.a())); });
    named_pipe_server server(name, pipe_direction::in_out, 2);
    auto tls = client_tls();
    tls->dead_peer_timeout = 3s;
    const std::string where = at_port(gw.port(), "10.231.0.1");
    {
        auto client = remote_client(where, name, tls);
        connect_from(hosts.b(), client);
        server.wait_for_connection(10s);
        exchange_100_mib(client, server);
        server.disconnect();
    }
    {
        // Message boundaries across the namespaces.
        auto msg_name = unique_pipe_name("netns-msg");
        running_gateway msg_gw(base_options({msg_name}, "10.231.0.1:0"),
                               [&] { ASSERT_TRUE(network_namespaces::enter(hosts.a())); });
        named_pipe_server msg_server(msg_name, pipe_direction::in_out, 1,
                                     transmission_mode::message);
        auto client = remote_client(at_port(msg_gw.port(), "10.231.0.1"), msg_name, tls);
        connect_from(hosts.b(), client);
        msg_server.wait_for_connection(10s);
        client.set_read_mode(transmission_mode::message);
        const std::vector<std::size_t> sizes = {3, 0, 200'000, 1};
        for (auto size : sizes)
            msg_server.write(std::vector<std::byte>(size, std::byte{7}));
        std::vector<std::byte> buffer(1 << 20);
        for (auto size : sizes) {
            EXPECT_EQ(client.read(buffer), size);
            EXPECT_TRUE(client.is_message_complete());
        }
    }
    // A .NET (Mono) server in the gateway's namespace, reached from the other one.
    if (have_mono()) {
        auto mono_name = unique_pipe_name("netns-mono");
        auto gw_options = base_options({mono_name}, "10.231.0.1:0");
        running_gateway mono_gw(gw_options,
                                [&] { ASSERT_TRUE(network_namespaces::enter(hosts.a())); });
        auto argv = mono_command(csharp_program("BulkPeer"), {"server", mono_name, "echo"});
        argv.insert(argv.begin(), {"ip", "netns", "exec", hosts.a()});
        child mono(argv);
        // The server's socket is in namespace a, where the kernel's socket list must be read.
        ASSERT_TRUE(std::async(std::launch::async, [&] {
                        return network_namespaces::enter(hosts.a()) &&
                               wait_for_server(mono_name, 60s);
                    }).get());
        auto client = remote_client(at_port(mono_gw.port(), "10.231.0.1"), mono_name, tls);
        connect_from(hosts.b(), client);
        auto sent = pattern(1 << 20, 9);
        auto writer = std::async(std::launch::async, [&] {
            write_text(client, sent);
            client.shutdown_write();
        });
        EXPECT_EQ(read_all(client), sent);
        writer.get();
        EXPECT_EQ(mono.wait(30s), 0);
    }
    // Cut the cable while the client writes: its error must come within the dead-peer timeout.
    auto client = remote_client(where, name, tls);
    connect_from(hosts.b(), client);
    server.wait_for_connection(10s);
    auto drain = std::async(std::launch::async, [&] {
        std::error_code ec;
        std::vector<std::byte> buffer(1 << 20);
        while (server.read(buffer, ec) > 0) {
        }
    });
    std::vector<std::byte> chunk(1 << 20);
    for (int i = 0; i < 8; ++i)
        client.write(chunk);
    ASSERT_TRUE(hosts.cut_link());
    auto cut = std::chrono::steady_clock::now();
    std::error_code write_error, read_error;
    for (int i = 0; i < 4096 && !write_error; ++i)
        client.write(chunk, write_error);
    std::vector<std::byte> buffer(4096);
    client.read(buffer, read_error);
    auto took = std::chrono::steady_clock::now() - cut;
    EXPECT_EQ(write_error, errc::broken_pipe);
    EXPECT_TRUE(read_error) << "a read after the cut must fail, not report end of stream";
    EXPECT_LT(took, 3s + 4s) << "the dead network took "
                             << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                             << " ms to notice";
    // The gateway lost the same peer: it ends the server's connection, which ends the drain.
    // disconnect() must not race the drain's read (only close() may be called from another
    // thread), so the drain ends first; close() wakes it should the gateway never end it.
    bool gateway_ended_it = drain.wait_for(3s + 10s) == std::future_status::ready;
    if (!gateway_ended_it)
        server.close();
    drain.get();
    EXPECT_TRUE(gateway_ended_it) << "the gateway kept the server's connection to a dead peer";
}

}  // namespace

#ifdef NPIPE_CLI_HAS_REMOTE
// --- Hostile use of the gateway (#16 items 3, 4, 8; #17 item 12) -------------------------------

// `npipe connect NAME --server 127.0.0.1:PORT` with the test CA and token.
run_result cli_remote_connect(const std::string& name, const std::string& port,
                              const std::string& input) {
    return run({cli(), "connect", name, "--server", "127.0.0.1:" + port, "--ca",
                certs().at("ca.pem"), "--token-file", certs().at("token"), "--timeout", "60000"},
               input, 120s);
}

// #16 item 3: with the real service down, another local user serves the allowed name. The
// gateway (root here) must not hand them the remote client's data: "pipe not available", and
// the owner it found in its log. --allow-owner names owners it may forward to.
TEST(RemoteCli, GatewayForwardsOnlyToPipesOfItsOwnUserOrAnAllowedOwner) {
    temp_dir shared;  // a /tmp of our own: sticky and writable by all
    ASSERT_EQ(::chmod(shared.path().c_str(), 01777), 0);
    auto name = unique_pipe_name("owner");
    child::options as_nobody;
    as_nobody.uid = 65534;
    as_nobody.gid = 65534;
    as_nobody.env["TMPDIR"] = shared.path();
    child impostor({cli(), "serve", name, "--echo", "--mode", "666"}, as_nobody);
    ASSERT_TRUE(wait_for_server(shared.path() + "/CoreFxPipe_" + name)) << impostor.err();
    child::options here;
    here.env["TMPDIR"] = shared.path();

    {
        child gw(cli_gateway_command(name), here);
        auto port = cli_gateway_port(gw);
        ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
        auto r = cli_remote_connect(name, port, "secret");
        EXPECT_NE(r.exit_code, 0);
        EXPECT_EQ(r.out, "") << "the other user's server answered";
        EXPECT_NE(r.err.find("pipe not available"), std::string::npos) << r.err;
        EXPECT_TRUE(gw.wait_for_error("its server runs as uid 65534", 1, 10s)) << gw.err();
        EXPECT_EQ(gw.err().find("forwarding"), std::string::npos) << gw.err();
        ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
        EXPECT_EQ(gw.wait(20s), 0) << gw.err();
    }
    child gw(cli_gateway_command(name) + std::vector<std::string>{"--allow-owner", "65534"}, here);
    auto port = cli_gateway_port(gw);
    ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
    auto r = cli_remote_connect(name, port, "secret");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "secret");
    ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
    EXPECT_EQ(gw.wait(20s), 0) << gw.err();
}

// #16 item 4: a gateway with 64 descriptors and 200 silent TCP connections (a handshake timeout
// far beyond the test's) still serves an authenticated client: the pending handshakes are
// capped, the oldest evicted, so it never runs out of descriptors and stalls.
TEST(RemoteCli, GatewayServesAClientWhileIdleConnectionsPileUp) {
    auto name = unique_pipe_name("flood");
    child echo({cli(), "serve", name, "--echo"});
    ASSERT_TRUE(wait_for_server(name)) << echo.err();
    child gw(std::vector<std::string>{"prlimit", "--nofile=64:64", "--"} +
             cli_gateway_command(name) + std::vector<std::string>{"--handshake-timeout", "600"});
    auto port = cli_gateway_port(gw);
    ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
    idle_connections idle;
    for (int i = 0; i < 200; ++i) {
        idle.push_back(std::make_unique<idle_connection>(port));
        ASSERT_TRUE(idle.back()->ok()) << i;
    }
    auto r = cli_remote_connect(name, port, "through the flood");
    EXPECT_EQ(r.exit_code, 0) << r.err << gw.err();
    EXPECT_EQ(r.out, "through the flood");
    // Served while the idle ones were still held, not after they timed out.
    EXPECT_EQ(gw.err().find("within the handshake timeout"), std::string::npos);
    EXPECT_NE(gw.err().find("evicted: too many pending handshakes"), std::string::npos);
    EXPECT_EQ(gw.err().find("Too many open files"), std::string::npos) << gw.err();
    ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
    EXPECT_EQ(gw.wait(20s), 0);
}

// The soft descriptor limit is raised to the hard one at start, as the echo server does.
TEST(RemoteCli, GatewayRaisesItsDescriptorLimit) {
    auto name = unique_pipe_name("limit");
    child gw(std::vector<std::string>{"prlimit", "--nofile=64:4096", "--"} +
             cli_gateway_command(name));
    ASSERT_FALSE(cli_gateway_port(gw).empty()) << gw.out() << gw.err();
    std::ifstream limits("/proc/" + std::to_string(gw.pid()) + "/limits");
    std::string line;
    while (std::getline(limits, line) && line.rfind("Max open files", 0) != 0) {
    }
    std::istringstream fields(line.substr(std::string("Max open files").size()));
    std::string soft, hard;
    fields >> soft >> hard;
    EXPECT_EQ(soft, "4096") << line;
    EXPECT_EQ(hard, "4096") << line;
    ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
    EXPECT_EQ(gw.wait(20s), 0);
}

// The per-address share: with the pool full, a flood from 127.0.0.2 evicts only its own
// connections, and only those pending for a second (never younger ones, which could be genuine
// clients mid-handshake); 127.0.0.3, under its share, keeps all of its, and a real client is
// served meanwhile.
TEST(Remote, HandshakeFloodFromOneAddressEvictsOnlyItsOwn) {
    auto name = unique_pipe_name("peraddr");
    auto options = base_options({name});
    options.max_handshakes = 12;
    options.max_handshakes_per_address = 4;
    options.handshake_timeout = 600s;
    running_gateway gw(options);
    auto port = std::to_string(gw.port());
    idle_connections others, flood;
    auto open_from = [&](idle_connections& into, const char* source, int n) {
        for (int i = 0; i < n; ++i) {
            into.push_back(std::make_unique<idle_connection>(port, source));
            ASSERT_TRUE(into.back()->ok());
        }
    };
    open_from(others, "127.0.0.3", 4);
    open_from(flood, "127.0.0.2", 8);
    ASSERT_TRUE(gw.wait_log(": accepted", 10s, 12)) << gw.log();
    // The pool is full; the eviction age is a second: these twelve are older than that from
    // here on.
    std::this_thread::sleep_for(1100ms);
    open_from(flood, "127.0.0.2", 4);
    ASSERT_TRUE(gw.wait_log(": accepted", 30s, 16)) << gw.log();
    ASSERT_TRUE(gw.wait_log("evicted: too many pending handshakes (127.0.0.2 holds", 30s, 4))
        << gw.log();
    for (std::size_t i = 0; i < 4; ++i)
        EXPECT_TRUE(flood[i]->closed_by_gateway(10s)) << i;
    for (std::size_t i = 4; i < flood.size(); ++i)
        EXPECT_FALSE(flood[i]->closed_by_gateway()) << i;
    for (auto& c : others)
        EXPECT_FALSE(c->closed_by_gateway());
    EXPECT_EQ(count_of(gw.log(), "evicted"), 4) << gw.log();

    named_pipe_server server(name);
    auto client = remote_client(at_port(gw.port()), name, client_tls());
    client.connect(30s);
    server.wait_for_connection(30s);
    write_text(client, "still served");
    client.shutdown_write();
    EXPECT_EQ(read_all(server), "still served");
}

// `openssl s_client` sending `request` raw after the handshake: a client that follows no rule.
run_result raw_tls_client(const std::string& port, const std::string& request) {
    return run({"openssl", "s_client", "-quiet", "-connect", "127.0.0.1:" + port, "-CAfile",
                certs().at("ca.pem"), "-verify_return_error"},
               request, 60s);
}

std::string raw_request(const std::string& name, const std::string& token) {
    std::string r = "NPRQ";
    r += '\x01';
    r += '\x00';
    r += static_cast<char>(name.size() & 0xff);
    r += static_cast<char>(name.size() >> 8);
    r += static_cast<char>(token.size() & 0xff);
    r += static_cast<char>(token.size() >> 8);
    return r + name + token;
}

// #16 item 8: a pipe name with a newline and terminal escapes, sent with a wrong token, is
// logged escaped: it cannot forge a "forwarding" line nor reach the operator's terminal.
// A malformed request is logged with the peer's address.
TEST(RemoteCli, GatewayLogEscapesWhatPeersSendAndNamesMalformedPeers) {
    auto name = unique_pipe_name("inject");
    child gw(cli_gateway_command(name));
    auto port = cli_gateway_port(gw);
    ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
    const std::string forged = name + "\nnpipe gateway: 10.0.0.1:1 for '" + name +
                               "': forwarding (byte mode)\x1b[2J\x1b]0;owned\x07";
    raw_tls_client(port, raw_request(forged, "wrong token"));
    ASSERT_TRUE(gw.wait_for_error("refused: the gateway refused the token", 1, 20s)) << gw.err();
    auto log = gw.err();
    std::istringstream log_lines(log);
    for (std::string line; std::getline(log_lines, line);) {
        EXPECT_EQ(line.rfind("npipe gateway: ", 0), 0u) << "a forged line: " << line;
        if (line.find("forwarding") != std::string::npos) {
            EXPECT_NE(line.find("refused"), std::string::npos) << "a forged line: " << line;
        }
    }
    EXPECT_EQ(log.find('\x1b'), std::string::npos) << "a raw escape reached the log";
    EXPECT_EQ(log.find('\x07'), std::string::npos);
    EXPECT_NE(log.find("\\x1b[2J\\x1b]0;owned\\x07"), std::string::npos) << log;

    raw_tls_client(port, "NPRQ\x01\x07garbage!");
    ASSERT_TRUE(gw.wait_for_error("malformed request", 1, 20s)) << gw.err();
    std::istringstream lines(gw.err());
    for (std::string line; std::getline(lines, line);)
        if (line.find("malformed request") != std::string::npos) {
            EXPECT_EQ(line.rfind("npipe gateway: 127.0.0.1:", 0), 0u) << line;
        }
    ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
    EXPECT_EQ(gw.wait(20s), 0);
}

// #17 item 12: the start-up line says where the gateway listens, what it exposes (escaped) and
// how clients authenticate; with nothing to expose it refuses to start (a usage error).
TEST(RemoteCli, GatewayStartupLineAndNothingToExpose) {
    auto name = unique_pipe_name("shown");
    child gw(cli_gateway_command(name) + std::vector<std::string>{"--allow", "odd\nname"});
    auto port = cli_gateway_port(gw);
    ASSERT_FALSE(port.empty()) << gw.out() << gw.err();
    ASSERT_TRUE(gw.wait_for_output("\n", 10s));
    auto line = gw.out().substr(0, gw.out().find('\n'));
    EXPECT_NE(line.find("listening on port " + port + " (127.0.0.1:" + port + ")"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("exposing '" + name + "', 'odd\\nname'"), std::string::npos) << line;
    EXPECT_NE(line.find("the token"), std::string::npos) << line;
    ASSERT_EQ(::kill(gw.pid(), SIGTERM), 0);
    EXPECT_EQ(gw.wait(20s), 0);

    auto command = cli_gateway_command(name);
    command.resize(command.size() - 2);  // without --allow NAME
    auto r = run(command, "", 30s);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find("nothing to expose"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;
}
#endif
