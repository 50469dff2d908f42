// What the remote pipe tests share (remote_test, asio_remote_test): certificates made at test
// time with the openssl command, a gateway on its own thread with its log, client settings.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "npipe/gateway.hpp"
#include "npipe/remote_options.hpp"
#include "support/test_support.hpp"

namespace npipe::test {

using namespace std::chrono_literals;

// The certificates every test uses, made once per test program.
struct certificates {
    temp_dir dir;
    std::string at(const std::string& file) const { return dir.path() + "/" + file; }
};

inline const certificates& certs() {
    static certificates* c = [] {
        auto* made = new certificates;
        const char* script = R"(set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.pem -days 2 -subj "/CN=$1" 2>/dev/null; }
ca ca; ca other_ca; ca client_ca
key gateway.key
openssl req -new -key gateway.key -out gateway.csr -subj /CN=gateway 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.231.0.1\n' > gateway.ext
openssl x509 -req -in gateway.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile gateway.ext -out gateway.pem 2>/dev/null
key client.key
openssl req -new -key client.key -out client.csr -subj /CN=client 2>/dev/null
openssl x509 -req -in client.csr -CA client_ca.pem -CAkey client_ca.key -CAcreateserial \
  -days 2 -out client.pem 2>/dev/null
key expired.key
openssl req -new -key expired.key -out expired.csr -subj /CN=expired 2>/dev/null
touch index.txt; echo 1000 > serial
printf '[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' > ca.cnf
openssl ca -config ca.cnf -batch -notext -cert client_ca.pem -keyfile client_ca.key \
  -in expired.csr -out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z 2>/dev/null
key self.key
openssl req -x509 -new -key self.key -out self.pem -days 2 -subj /CN=self 2>/dev/null
printf 's3cret-token\n' > token
)";
        auto r = run({"sh", "-c", std::string("cd '") + made->dir.path() + "' && " + script});
        if (r.exit_code != 0)
            ADD_FAILURE() << "making certificates failed: " << r.err;
        return made;
    }();
    return *c;
}

// A gateway running on its own thread, with its log collected.
class running_gateway {
  public:
    // `on_line` sees each log line on the gateway's thread, after it is recorded: a test
    // can hold the gateway still at a known point by blocking there.
    explicit running_gateway(gateway_options options, std::function<void()> in_thread = {},
                             std::function<void(std::string_view)> on_line = {}) {
        options.log = [this, on_line](std::string_view line) {
            {
                std::lock_guard lock(mutex_);
                log_.emplace_back(line);
            }
            if (on_line)
                on_line(line);
        };
        std::promise<std::uint16_t> port;
        auto ready = port.get_future();
        thread_ = std::thread([this, options, in_thread, &port]() mutable {
            if (in_thread)
                in_thread();  // e.g. enter a network namespace before the socket is made
            try {
                gateway_ = std::make_unique<gateway>(options);
            } catch (...) {
                port.set_exception(std::current_exception());
                return;
            }
            port.set_value(gateway_->port());
            gateway_->run();
        });
        try {
            port_ = ready.get();
        } catch (...) {
            thread_.join();
            throw;
        }
    }
    ~running_gateway() {
        if (gateway_)
            gateway_->stop();
        thread_.join();
    }
    std::uint16_t port() const { return port_; }
    void stop() { gateway_->stop(); }
    std::string log() const {
        std::lock_guard lock(mutex_);
        std::string all;
        for (auto& l : log_)
            all += l + "\n";
        return all;
    }
    // Waits until the log contains `text` `times` times (the gateway logs on its own thread).
    bool wait_log(const std::string& text, std::chrono::milliseconds timeout = 10s,
                  int times = 1) const {
        auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            if (count_of(log(), text) >= times)
                return true;
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> log_;
    std::unique_ptr<gateway> gateway_;
    std::thread thread_;
    std::uint16_t port_ = 0;
};

inline gateway_options base_options(std::vector<std::string> allow,
                                    std::string listen = "127.0.0.1:0") {
    gateway_options o;
    o.listen = std::move(listen);
    o.cert_file = certs().at("gateway.pem");
    o.key_file = certs().at("gateway.key");
    o.token = read_token_file(certs().at("token"));
    o.allow = std::move(allow);
    return o;
}

inline std::shared_ptr<remote_options> client_tls(std::string token = "s3cret-token") {
    auto tls = std::make_shared<remote_options>();
    tls->ca_file = certs().at("ca.pem");
    tls->token = std::move(token);
    return tls;
}

inline std::string at_port(std::uint16_t port, const std::string& host = "127.0.0.1") {
    return host + ":" + std::to_string(port);
}

// A TCP listener on loopback that accepts (in the kernel) and never speaks: a TLS handshake
// with it can only time out.
class silent_listener {
  public:
    silent_listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(fd_, 4) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            ADD_FAILURE() << "a loopback listener: " << std::strerror(errno);
        port_ = ntohs(addr.sin_port);
    }
    ~silent_listener() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    silent_listener(const silent_listener&) = delete;
    silent_listener& operator=(const silent_listener&) = delete;
    std::uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace npipe::test
