// Soak driver for tests/soak/soak.sh (issue 6): a message-mode echo server, well-behaved clients
// that verify every echoed message, and hostile clients. Not part of the quick test run.
//
//   soak_driver server NAME INSTANCES     echo server; prints "ready", runs until SIGTERM, then
//                                         prints "refused N dropped N echoed N"
//   soak_driver clients NAME N ROUNDS     N clients x ROUNDS round trips of checksummed
//                                         messages; prints "verified N lost N corrupted N"
//   soak_driver hostile NAME STOPFILE     misbehaving clients until STOPFILE exists; prints
//                                         "attacks N killed N refused_attempts N"
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "npipe/npipe.hpp"

using namespace std::chrono_literals;

namespace {

std::uint32_t checksum(const std::byte* data, std::size_t size) {
    std::uint32_t h = 2166136261u;  // FNV-1a
    for (std::size_t i = 0; i < size; ++i)
        h = (h ^ static_cast<std::uint32_t>(data[i])) * 16777619u;
    return h;
}

struct rng {
    std::uint64_t x;
    std::uint64_t next() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    }
};

constexpr std::size_t max_message = 64 * 1024;

int run_server(const std::string& name, int instances) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    std::atomic<long> refused{0}, dropped{0}, echoed{0};
    npipe::pipe_options options;
    options.max_message_size = max_message;
    options.socket_mode = 0666;  // everyone reaches the socket; the predicate refuses others
    options.accept_peer = [&](const npipe::peer_credentials& peer) {
        if (peer.uid == ::geteuid())
            return true;
        ++refused;
        return false;
    };
    std::vector<std::unique_ptr<npipe::named_pipe_server>> servers;
    for (int i = 0; i < instances; ++i)
        servers.push_back(std::make_unique<npipe::named_pipe_server>(
            name, npipe::pipe_direction::in_out, npipe::max_allowed_server_instances,
            npipe::transmission_mode::message, options));
    std::vector<std::thread> threads;
    for (auto& server : servers) {
        threads.emplace_back([&, s = server.get()] {
            std::vector<std::byte> buffer(max_message);
            for (;;) {
                std::error_code ec;
                s->wait_for_connection(ec);
                if (ec)
                    return;  // closed: shutting down
                for (;;) {
                    std::size_t got = 0;
                    bool complete = false;
                    while (!complete) {
                        auto n = s->read(std::span(buffer).subspan(got), ec);
                        if (ec || (n == 0 && s->end_of_stream()))
                            break;
                        got += n;
                        complete = s->is_message_complete();
                    }
                    if (ec)
                        ++dropped;  // a hostile or killed client: its reason is ec
                    if (!complete)
                        break;
                    s->write(std::span(buffer.data(), got), ec);
                    if (ec)
                        break;
                    ++echoed;
                }
                s->disconnect();
            }
        });
    }
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    for (auto& s : servers)
        s->close();
    for (auto& t : threads)
        t.join();
    std::printf("refused %ld dropped %ld echoed %ld\n", refused.load(), dropped.load(),
                echoed.load());
    return 0;
}

int run_clients(const std::string& name, int count, long rounds) {
    std::atomic<long> verified{0}, lost{0}, corrupted{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < count; ++c) {
        threads.emplace_back([&, c] {
            rng r{0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(c + 1)};
            npipe::named_pipe_client client(name);
            std::error_code ec;
            client.connect(30s, ec);
            if (ec) {
                lost += rounds;
                return;
            }
            client.set_read_mode(npipe::transmission_mode::message);
            std::vector<std::byte> out(4096 + 16), in(4096 + 16);
            for (long i = 0; i < rounds; ++i) {
                std::size_t size = 16 + r.next() % 4096;
                for (std::size_t k = 8; k < size; ++k)
                    out[k] = static_cast<std::byte>(r.next());
                std::uint32_t seq = static_cast<std::uint32_t>(i);
                std::uint32_t sum = checksum(out.data() + 8, size - 8);
                std::memcpy(out.data(), &seq, 4);
                std::memcpy(out.data() + 4, &sum, 4);
                client.write(std::span(out.data(), size), ec);
                std::size_t got = 0;
                bool complete = false;
                while (!ec && !complete) {
                    auto n = client.read(std::span(in).subspan(got), ec);
                    if (n == 0 && client.end_of_stream())
                        break;
                    got += n;
                    complete = client.is_message_complete();
                }
                if (ec || !complete) {
                    lost += rounds - i;
                    return;
                }
                std::uint32_t seq_back, sum_back;
                std::memcpy(&seq_back, in.data(), 4);
                std::memcpy(&sum_back, in.data() + 4, 4);
                if (got != size || seq_back != seq ||
                    sum_back != checksum(in.data() + 8, got - 8) ||
                    std::memcmp(in.data(), out.data(), size) != 0)
                    ++corrupted;
                else
                    ++verified;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    std::printf("verified %ld lost %ld corrupted %ld\n", verified.load(), lost.load(),
                corrupted.load());
    return lost == 0 && corrupted == 0 ? 0 : 1;
}

int raw_connect(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string header(std::uint32_t word) {
    std::string h(4, '\0');
    for (int i = 0; i < 4; ++i)
        h[static_cast<std::size_t>(i)] = static_cast<char>(word >> (8 * i));
    return h;
}

int run_hostile(const std::string& name, const std::string& stop_file) {
    std::string path = npipe::pipe_path(name);
    long attacks = 0, killed = 0, refused_attempts = 0;
    rng r{12345};
    while (::access(stop_file.c_str(), F_OK) != 0) {
        int kind = static_cast<int>(r.next() % 6);
        ++attacks;
        if (kind <= 2) {
            // In-process: garbage, a truncated frame, an oversize claim; then close.
            int fd = raw_connect(path);
            if (fd < 0)
                continue;
            std::string record = kind == 0   ? std::string(64, '\xa5') + "garbage"
                                 : kind == 1 ? header(1000) + "cut short"
                                             : header(0x7ffffff0) + "I claim two gigabytes";
            ::send(fd, record.data(), record.size(), MSG_NOSIGNAL);
            ::close(fd);
            continue;
        }
        pid_t pid = ::fork();
        if (pid == 0) {
            if (kind == 5) {
                // Another user: refused by the server's predicate before a byte moves.
                if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
                    ::_exit(3);
            }
            int fd = raw_connect(path);
            if (fd < 0)
                ::_exit(4);
            if (kind == 4) {
                std::string part = header(0x80000100) + std::string(256, 'p') + header(50);
                ::send(fd, part.data(), part.size(), MSG_NOSIGNAL);  // killed mid-message
            }
            if (kind == 5) {
                char b;
                ::_exit(::recv(fd, &b, 1, 0) == 0 ? 0 : 5);  // refused: end of stream
            }
            ::pause();  // kind 3: a stall; kind 4: mid-message, until killed
            ::_exit(0);
        }
        if (kind == 5) {
            int status = 0;
            ::waitpid(pid, &status, 0);
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                ++refused_attempts;
            continue;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + r.next() % 30));
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        ++killed;
    }
    std::printf("attacks %ld killed %ld refused_attempts %ld\n", attacks, killed, refused_attempts);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    try {
        if (mode == "server" && argc == 4)
            return run_server(argv[2], std::stoi(argv[3]));
        if (mode == "clients" && argc == 5)
            return run_clients(argv[2], std::stoi(argv[3]), std::stol(argv[4]));
        if (mode == "hostile" && argc == 4)
            return run_hostile(argv[2], argv[3]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "soak_driver: %s\n", e.what());
        return 2;
    }
    std::fprintf(stderr, "usage: see the comment at the top of soak_driver.cpp\n");
    return 2;
}
