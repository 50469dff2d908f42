// The shared-memory transport (pipe_options::shared_memory, docs/protocol.md "Shared memory"):
// when it is used and when not, the rendezvous's name rules, a killed peer, a hostile peer.
// The behaviour every transport shares runs on both in named_pipe_test and message_mode_test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "npipe/npipe.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using npipe::errc;
using npipe::named_pipe_client;
using npipe::named_pipe_server;
using npipe::pipe_direction;
using npipe::pipe_options;
using npipe::test::unique_pipe_name;
using npipe::test::pipe_io::bytes;
using npipe::test::pipe_io::read_to_end;

namespace {

pipe_options shm(std::size_t ring = pipe_options::default_shared_memory_ring_size) {
    pipe_options o;
    o.shared_memory = true;
    o.shared_memory_ring_size = ring;
    return o;
}

// The start addresses of this process's mappings of shared-memory pipes' memfds.
std::vector<std::uintptr_t> shm_mappings() {
    std::vector<std::uintptr_t> found;
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find("/memfd:npipe-shm") != std::string::npos)
            found.push_back(std::stoull(line.substr(0, line.find('-')), nullptr, 16));
    return found;
}

// A connected pair in this process; the client connects before the server accepts (as a
// socket's backlog allows), so one thread is enough.
struct pair_of {
    pair_of(const pipe_options& server_options, const pipe_options& client_options,
            npipe::transmission_mode mode = npipe::transmission_mode::byte)
        : name(unique_pipe_name("shm")),
          server(name, pipe_direction::in_out, 1, mode, server_options),
          client(".", name, pipe_direction::in_out, client_options) {
        client.connect(5s);
        server.wait_for_connection(5s);
    }
    std::string name;
    named_pipe_server server;
    named_pipe_client client;
};

}  // namespace

TEST(shared_memory, both_ends_opted_in_map_the_rings_and_exchange_data) {
    ASSERT_TRUE(shm_mappings().empty());
    pair_of p(shm(), shm());
    EXPECT_EQ(shm_mappings().size(), 2u) << "the server's and the client's mapping";
    p.client.write(bytes("ping"));
    std::byte buffer[16];
    ASSERT_EQ(p.server.read(buffer), 4u);
    p.server.write(bytes("pong!"));
    ASSERT_EQ(p.client.read(buffer), 5u);
    EXPECT_EQ(std::memcmp(buffer, "pong!", 5), 0);
    EXPECT_EQ(p.server.get_peer_credentials().pid, ::getpid());
}

TEST(shared_memory, an_end_that_did_not_opt_in_gets_the_ordinary_socket) {
    {
        pair_of p(pipe_options{}, shm());
        EXPECT_TRUE(shm_mappings().empty()) << "server did not offer it";
        EXPECT_FALSE(std::filesystem::exists(p.server.socket_path() + ".npipe-shm"));
        p.client.write(bytes("x"));
        EXPECT_EQ(p.server.read_byte(), 'x');
    }
    {
        pair_of p(shm(), pipe_options{});
        EXPECT_TRUE(shm_mappings().empty()) << "client did not ask for it";
        p.server.write(bytes("y"));
        EXPECT_EQ(p.client.read_byte(), 'y');
    }
}

TEST(shared_memory, the_rendezvous_has_the_sockets_mode_and_goes_with_it) {
    std::string path;
    {
        auto options = shm();
        options.socket_mode = 0640;
        named_pipe_server server(unique_pipe_name("mode"), pipe_direction::in_out, 1, options);
        path = server.socket_path();
        struct stat rendezvous {};
        ASSERT_EQ(::lstat((path + ".npipe-shm").c_str(), &rendezvous), 0);
        EXPECT_TRUE(S_ISSOCK(rendezvous.st_mode));
        EXPECT_EQ(rendezvous.st_mode & 07777, 0640u);
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path + ".npipe-shm"));
}

TEST(shared_memory, a_stale_rendezvous_of_ours_is_replaced) {
    auto name = unique_pipe_name("stale");
    auto path = npipe::pipe_path(name) + ".npipe-shm";
    {
        // A crashed server's leftover: a socket file nobody listens on.
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ::close(fd);
    }
    named_pipe_server server(name, pipe_direction::in_out, 1, shm());
    named_pipe_client client(".", name, pipe_direction::in_out, shm());
    client.connect(5s);
    server.wait_for_connection(5s);
    EXPECT_EQ(shm_mappings().size(), 2u);
}

TEST(shared_memory, a_client_there_the_moment_the_pipe_appears_gets_shared_memory) {
    // The pipe listens only once its rendezvous does: a client that tries again and again
    // while the server starts never gets through to the pipe before the rendezvous is there
    // (it would fall back to the plain socket).
    for (int round = 0; round < 200; ++round) {
        auto name = unique_pipe_name("early");
        std::atomic<bool> stop{false};
        named_pipe_client client(".", name, pipe_direction::in_out, shm(4096));
        auto connecting = std::async(std::launch::async, [&] {
            std::error_code ec;
            do
                client.connect(0ms, ec);
            while (ec && !stop);
            return ec;
        });
        named_pipe_server server(name, pipe_direction::in_out, 1, shm(4096));
        server.wait_for_connection(5s);
        stop = true;
        ASSERT_FALSE(connecting.get());
        ASSERT_EQ(shm_mappings().size(), 2u) << "round " << round;
    }
}

TEST(shared_memory, a_silent_rendezvous_client_does_not_hold_up_the_next_one) {
    // A client that connects to the rendezvous and never sends its hello is kept aside (its
    // hello may still come), not waited for inside accept: the client after it is accepted at
    // once, and the silent one stays connected (a server that waited for its hello would have
    // given up on it and closed it).
    auto name = unique_pipe_name("silent");
    named_pipe_server server(name, pipe_direction::in_out, 2, shm());
    const std::string path = server.socket_path() + ".npipe-shm";
    int silent = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(silent, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    named_pipe_client client(".", name, pipe_direction::in_out, shm());
    client.connect(5s);
    server.wait_for_connection(5s);
    EXPECT_EQ(shm_mappings().size(), 2u) << "the client after the silent one has its rings";
    client.write(bytes("after"));
    std::byte buffer[8];
    EXPECT_EQ(server.read(buffer), 5u);
    char c;
    EXPECT_EQ(::recv(silent, &c, 1, MSG_DONTWAIT), -1) << "the silent client was closed";
    EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    ::close(silent);
}

TEST(shared_memory, a_bad_ring_size_is_invalid_argument) {
    auto name = unique_pipe_name("size");
    named_pipe_server server(name, pipe_direction::in_out, 1, shm());
    named_pipe_client client(".", name, pipe_direction::in_out, shm(3000));
    std::error_code ec;
    client.connect(2s, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
}

TEST(shared_memory, small_rings_carry_large_writes_both_ways) {
    pair_of p(shm(), shm(4096));
    auto up = npipe::test::pattern(3 << 20, 5), down = npipe::test::pattern(3 << 20, 6);
    std::thread writer([&] {
        p.client.write(bytes(up));
        p.client.shutdown_write();
    });
    auto from_server = std::async(std::launch::async, [&] {
        p.server.write(bytes(down));
        p.server.shutdown_write();
    });
    EXPECT_TRUE(read_to_end(p.server) == up);
    EXPECT_TRUE(read_to_end(p.client) == down);
    writer.join();
    from_server.get();
}

TEST(shared_memory, a_reader_and_a_writer_thread_on_one_end_both_wake) {
    // Full-duplex on one end, two threads each waiting on its own bell.
    pair_of p(shm(), shm(4096));
    auto block = npipe::test::pattern(1 << 20, 8);
    std::thread echo([&] {
        std::vector<std::byte> buffer(8192);
        while (auto n = p.server.read(buffer))
            p.server.write(std::span(buffer.data(), n));
        p.server.shutdown_write();
    });
    std::thread writer([&] {
        p.client.write(bytes(block));
        p.client.shutdown_write();
    });
    EXPECT_TRUE(read_to_end(p.client) == block);
    writer.join();
    echo.join();
}

// A client in a child process (killed with SIGKILL at the point `ready` is written), the server
// here: what the server sees must come from the kernel closing the child's bells.
TEST(shared_memory, a_killed_client_is_end_of_stream_and_broken_pipe_at_once) {
    auto name = unique_pipe_name("kill");
    named_pipe_server server(name, pipe_direction::in_out, 1, shm(4096));
    pid_t pid = ::fork();
    if (pid == 0) {
        named_pipe_client c(".", name, pipe_direction::in_out, shm(4096));
        c.connect(10s);
        c.write(bytes("r"));
        for (;;)
            ::pause();
    }
    server.wait_for_connection(10s);
    ASSERT_EQ(server.read_byte(), 'r');
    // The server sleeps in a read when the client dies.
    auto reader = std::async(std::launch::async, [&] {
        std::byte b[1];
        return server.read(b);
    });
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    const auto reaped = std::chrono::steady_clock::now();
    ASSERT_EQ(reader.wait_for(10s), std::future_status::ready) << "the reader hangs";
    EXPECT_EQ(reader.get(), 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - reaped, 1s);
    std::error_code ec;
    std::string block(1 << 16, 'w');
    for (int i = 0; i < 64 && !ec; ++i)  // at most a ring's worth fits before it is noticed
        server.write(bytes(block), ec);
    EXPECT_EQ(ec, errc::broken_pipe);
}

TEST(shared_memory, a_killed_server_is_end_of_stream_and_broken_pipe_at_once) {
    auto name = unique_pipe_name("kills");
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        named_pipe_server s(name, pipe_direction::in_out, 1, shm(4096));
        char one = 1;
        [[maybe_unused]] auto n = ::write(ready[1], &one, 1);
        s.wait_for_connection(10s);
        s.write(bytes("r"));
        for (;;)
            ::pause();
    }
    ::close(ready[1]);
    char one;
    ASSERT_EQ(::read(ready[0], &one, 1), 1);
    ::close(ready[0]);
    named_pipe_client client(".", name, pipe_direction::in_out, shm(4096));
    client.connect(10s);
    ASSERT_EQ(client.read_byte(), 'r');
    EXPECT_EQ(shm_mappings().size(), 1u);
    // The client fills the ring and sleeps in a write when the server dies.
    auto writer = std::async(std::launch::async, [&] {
        std::error_code ec;
        std::string block(1 << 16, 'w');
        for (int i = 0; i < 1000 && !ec; ++i)
            client.write(bytes(block), ec);
        return ec;
    });
    ASSERT_NE(writer.wait_for(200ms), std::future_status::ready) << "the write should block";
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    const auto reaped = std::chrono::steady_clock::now();
    ASSERT_EQ(writer.wait_for(10s), std::future_status::ready) << "the writer hangs";
    EXPECT_EQ(writer.get(), errc::broken_pipe);
    EXPECT_LT(std::chrono::steady_clock::now() - reaped, 1s);
    std::byte b[1];
    EXPECT_EQ(client.read(b), 0u);
}

TEST(shared_memory, garbage_in_the_shared_indices_is_a_protocol_error_not_a_crash) {
    pair_of p(shm(), shm(4096));
    p.client.write(bytes("ok"));
    std::byte buffer[16];
    ASSERT_EQ(p.server.read(buffer), 2u);
    auto maps = shm_mappings();
    ASSERT_EQ(maps.size(), 2u);
    // Playing a hostile client: a write index far beyond what the ring holds.
    auto* control = reinterpret_cast<std::uint64_t*>(maps[0]);
    __atomic_store_n(&control[0], 0x7fff'ffff'ffff'0000ull, __ATOMIC_RELEASE);
    std::error_code ec;
    EXPECT_EQ(p.server.read(buffer, ec), 0u);
    EXPECT_EQ(ec, errc::protocol_error);
    p.server.read(buffer, ec);
    EXPECT_EQ(ec, errc::protocol_error) << "sticky: nothing after garbage is trusted";
    // The pipe is over for the client too.
    EXPECT_EQ(p.client.read(buffer), 0u);
}

TEST(shared_memory, an_impostors_rendezvous_beside_a_plain_server_is_passed_over) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to act as another user";
    auto name = unique_pipe_name("impostor");
    named_pipe_server server(name);  // offers no shared memory
    auto rendezvous = server.socket_path() + ".npipe-shm";
    // Another user's listening socket where the rendezvous would be.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(1);
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, rendezvous.c_str(), sizeof addr.sun_path - 1);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(fd, 4) != 0)
            ::_exit(2);
        char one = 1;
        [[maybe_unused]] auto n = ::write(fds[1], &one, 1);
        for (;;)
            ::pause();
    }
    ::close(fds[1]);
    char one;
    bool bound = ::read(fds[0], &one, 1) == 1;
    ::close(fds[0]);
    if (bound) {
        named_pipe_client client(".", name, pipe_direction::in_out, shm());
        client.connect(5s);
        server.wait_for_connection(5s);
        EXPECT_TRUE(shm_mappings().empty());
        client.write(bytes("z"));
        EXPECT_EQ(server.read_byte(), 'z') << "the client reached the real server";
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::unlink(rendezvous.c_str());
    if (!bound)
        GTEST_SKIP() << "the other user cannot bind in the test's directory";
}

TEST(shared_memory, list_pipes_shows_the_pipe_not_its_rendezvous) {
    named_pipe_server server(unique_pipe_name("list"), pipe_direction::in_out, 1, shm());
    int found = 0;
    for (auto& pipe : npipe::list_pipes()) {
        EXPECT_EQ(pipe.path.find(".npipe-shm"), std::string::npos) << pipe.path;
        found += pipe.path == server.socket_path();
    }
    EXPECT_EQ(found, 1);
}

// Through the CLI: `serve --shared-memory` and `connect --shared-memory` move a file through
// shared memory, and serve removes its rendezvous with its socket when it ends.
TEST(shared_memory, cli_serve_and_connect_with_shared_memory) {
    using npipe::test::cli;
    auto name = unique_pipe_name("cli");
    auto data = npipe::test::pattern(3 << 20, 12);
    npipe::test::child::options no_input;
    no_input.capture_stdin = false;  // serve sends nothing back: the client's output ends
    npipe::test::child server({cli(), "serve", name, "--shared-memory"}, no_input);
    ASSERT_TRUE(npipe::test::wait_for_server(name, 10s)) << server.err();
    auto path = npipe::pipe_path(name);
    EXPECT_TRUE(std::filesystem::exists(path + ".npipe-shm"));
    auto client = npipe::test::run({cli(), "connect", name, "--shared-memory", "--timeout", "10s"},
                                   data, 60s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_TRUE(server.out() == data) << "content differs";
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path + ".npipe-shm"));
    auto refused =
        npipe::test::run({cli(), "serve", name, "--shared-memory", "--", "cat"}, {}, 10s);
    EXPECT_EQ(refused.exit_code, 2) << refused.err;
}
