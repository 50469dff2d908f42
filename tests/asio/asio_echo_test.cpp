// `npipe serve NAME --echo`: the asynchronous echo server of the CLI, on one thread, holding
// 10,000 concurrent clients driven from this process (one thread as well), each checked to get
// its own bytes (or messages) back, and memory that grows by a few KiB per idle client.
#include <sys/resource.h>
#include <sys/stat.h>

#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/pipe_name.hpp"
#include "support/test_support.hpp"

namespace na = npipe::asio;
using namespace std::chrono_literals;
using npipe::test::cli;
using npipe::test::unique_pipe_name;

namespace {

// Resident memory of a process in KiB (VmRSS), or -1.
long rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6));
    return -1;
}

// This process needs a descriptor per client; the server raises its own limit.
bool raise_fd_limit(rlim_t needed, std::string& why) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur >= needed)
        return true;
    why = "the open-file hard limit is " + std::to_string(limit.rlim_max) + ", this test needs " +
          std::to_string(needed) + " (ulimit -Hn; in a container: --ulimit nofile=65536)";
    return false;
}

struct client {
    client(::asio::io_context& io, const std::string& name, std::string payload_)
        : pipe(io, name), payload(std::move(payload_)), back(payload.size(), '\0') {}
    na::named_pipe_client pipe;
    std::string payload;
    std::string back;
    std::error_code error;
    bool done = false;
};

void run_clients(bool message, int count) {
    std::string why;
    if (!raise_fd_limit(static_cast<rlim_t>(count) + 200, why))
        GTEST_FAIL() << why;
    auto name = unique_pipe_name(message ? "echo-msg" : "echo");
    std::vector<std::string> argv = {cli(),    "serve",           name,
                                     "--echo", "--max-instances", "unlimited"};
    if (message)
        argv.push_back("--message");
    npipe::test::child server(argv);
    ASSERT_TRUE(npipe::test::wait_for_server(name, 20s)) << server.err();
    long rss_before = rss_kib(server.pid());

    ::asio::io_context io(1);
    std::vector<std::unique_ptr<client>> clients;
    clients.reserve(count);
    int finished = 0;
    for (int i = 0; i < count; ++i) {
        // Each client's bytes are its own: its number and a pattern seeded by it.
        auto payload =
            "client " + std::to_string(i) + ": " + npipe::test::pattern(40 + i % 61, i + 1);
        clients.push_back(std::make_unique<client>(io, name, std::move(payload)));
        auto* c = clients.back().get();
        c->pipe.async_connect(30s, [&, c](std::error_code ec) {
            auto fail = [&, c](std::error_code ec) {
                c->error = ec;
                ++finished;
            };
            if (ec)
                return fail(ec);
            auto on_read = [&, c, fail](std::error_code ec, std::size_t n) {
                if (ec || n != c->back.size())
                    return fail(ec ? ec : std::make_error_code(std::errc::message_size));
                c->done = true;
                ++finished;
                // Every client stays connected until all are served: 10,000 at once.
            };
            auto on_write = [&, c, on_read, fail](std::error_code ec, std::size_t) {
                if (ec)
                    return fail(ec);
                if (message)
                    c->pipe.async_read_message(::asio::buffer(c->back), on_read);
                else
                    ::asio::async_read(c->pipe, ::asio::buffer(c->back), on_read);
            };
            if (message)
                c->pipe.async_write_message(::asio::buffer(c->payload), on_write);
            else
                ::asio::async_write(c->pipe, ::asio::buffer(c->payload), on_write);
        });
    }
    auto start = std::chrono::steady_clock::now();
    while (finished < count && std::chrono::steady_clock::now() - start < 50s)
        io.run_one_for(1s);
    long rss_after = rss_kib(server.pid());

    int served = 0, wrong = 0;
    std::string first_error;
    for (auto& c : clients) {
        if (c->error && first_error.empty())
            first_error = c->error.message();
        if (c->done && c->back == c->payload)
            ++served;
        else if (c->done)
            ++wrong;
    }
    EXPECT_EQ(wrong, 0) << "clients that got someone else's bytes";
    EXPECT_EQ(served, count) << "first error: " << first_error << "; server: " << server.err();
    // 10,000 idle clients: a few KiB each, not a thread or a big buffer each. (Not under a
    // sanitizer, whose shadow memory grows with every allocation.)
    ASSERT_GT(rss_before, 0);
    double per_client = double(rss_after - rss_before) / count;
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
    EXPECT_LT(per_client, 8.0) << "server RSS " << rss_before << " KiB -> " << rss_after << " KiB";
#endif
    ::testing::Test::RecordProperty("server_kib_per_client", std::to_string(per_client));
    std::cout << "server RSS " << rss_before << " KiB -> " << rss_after << " KiB (" << per_client
              << " KiB per client), " << count << " clients in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
              << " s\n";

    clients.clear();
    ::kill(server.pid(), SIGTERM);
    EXPECT_EQ(server.wait(20s), 0) << server.err();
}

TEST(AsioEchoCli, TenThousandConcurrentClients) {
    run_clients(false, 10000);
}

TEST(AsioEchoCli, TenThousandConcurrentMessageClients) {
    run_clients(true, 10000);
}

TEST(AsioEchoCli, StopsCleanlyOnSigtermAndSigint) {
    for (int sig : {SIGTERM, SIGINT}) {
        auto name = unique_pipe_name("echo-stop");
        npipe::test::child server({cli(), "serve", name, "--echo"});
        ASSERT_TRUE(npipe::test::wait_for_server(name, 20s)) << server.err();
        // A connected client does not keep the server from stopping.
        ::asio::io_context io;
        na::named_pipe_client c(io, name);
        c.async_connect(5s, [](std::error_code ec) { EXPECT_FALSE(ec); });
        io.run();
        ::kill(server.pid(), sig);
        EXPECT_EQ(server.wait(20s), 0) << server.err();
        struct stat st {};
        EXPECT_NE(::stat(npipe::pipe_path(name).c_str(), &st), 0) << "socket file left behind";
    }
}

}  // namespace
