// Wire compatibility with real .NET peers, each case on Mono and on .NET 10: the seed's C#
// programs, bulk transfers, several clients at once, PipeDirection.In/Out, CurrentUserOnly, end of
// stream and broken pipes, each against the npipe library and the npipe CLI.
//
// Every test runs under its own TMPDIR (set in this process, so children inherit it): .NET, Mono
// and npipe all map simple pipe names under $TMPDIR, which keeps the seed programs' fixed name
// "test-pipe" private to one test.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/pipe_name.hpp"
#include "support/test_support.hpp"

namespace npipe::test {
namespace {

using namespace pipe_io;

constexpr std::size_t bulk_size = 50 * mib;
constexpr uid_t nobody = 65534;

// FNV-1a 64 as 16 hex digits: what BulkPeer.cs prints for the bytes it received.
std::string fnv1a64(const std::string& data) {
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char c : data) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
    return text;
}

mode_t current_umask() {
    mode_t mask = ::umask(0);
    ::umask(mask);
    return mask;
}

std::string received_line(const std::string& data) {
    return "received " + std::to_string(data.size()) + " " + fnv1a64(data) + "\n";
}

// Every case runs once per C# runtime (Mono and .NET 10): Interop/Suite.Case/mono and
// Interop/Suite.Case/dotnet10.
class InteropTest : public ::testing::TestWithParam<csharp_runtime> {
  public:
    void SetUp() override {
        NPIPE_REQUIRE_RUNTIME(GetParam());
        ASSERT_FALSE(peer({}).empty());
        dir_.emplace();
    }
    void TearDown() override { dir_.reset(); }

    bool dotnet() const { return GetParam() == csharp_runtime::dotnet10; }

    // `mono PROGRAM.exe args...` or `dotnet Peers.dll PROGRAM args...`
    std::vector<std::string> program(const std::string& name, std::vector<std::string> args) const {
        return csharp_command(GetParam(), name, std::move(args));
    }

    // BulkPeer (see BulkPeer.cs) with these arguments.
    std::vector<std::string> peer(std::vector<std::string> args) const {
        return program("BulkPeer", std::move(args));
    }

    // BulkPeer runnable by another user: the program is copied into the test's directory, which
    // is opened to everyone (the build tree may not be).
    std::vector<std::string> peer_for_anyone(std::vector<std::string> args) const {
        EXPECT_EQ(::chmod(dir().c_str(), 01777), 0);
        auto argv = peer(std::move(args));
        auto copy_dir = dir() + "/peer";
        std::filesystem::create_directory(copy_dir);
        // argv[1] is the .exe (Mono) or Peers.dll (.NET): copy it with its neighbours
        // (runtimeconfig.json, deps.json).
        auto from = std::filesystem::path(argv[1]);
        for (auto& entry : std::filesystem::directory_iterator(from.parent_path())) {
            auto file = entry.path().filename().string();
            if (dotnet() ? file.rfind("Peers.", 0) == 0 : file == from.filename().string())
                std::filesystem::copy_file(entry.path(), copy_dir + "/" + file,
                                           std::filesystem::copy_options::overwrite_existing);
        }
        ::chmod(copy_dir.c_str(), 0755);
        for (auto& entry : std::filesystem::directory_iterator(copy_dir))
            ::chmod(entry.path().c_str(), 0644);
        argv[1] = copy_dir + "/" + from.filename().string();
        return argv;
    }

    const std::string& dir() const { return dir_->path(); }

  private:
    std::optional<tmpdir_scope> dir_;
};

#define NPIPE_INTEROP_SUITE(suite)                                                              \
    class suite : public InteropTest {};                                                        \
    INSTANTIATE_TEST_SUITE_P(Interop, suite,                                                    \
                             ::testing::Values(csharp_runtime::mono, csharp_runtime::dotnet10), \
                             runtime_param_name())

NPIPE_INTEROP_SUITE(SeedExchange);
NPIPE_INTEROP_SUITE(Bulk);
NPIPE_INTEROP_SUITE(ManyClients);
NPIPE_INTEROP_SUITE(Direction);
NPIPE_INTEROP_SUITE(CurrentUserOnly);
NPIPE_INTEROP_SUITE(EndOfStream);
NPIPE_INTEROP_SUITE(NameRules);
NPIPE_INTEROP_SUITE(ConnectWait);
NPIPE_INTEROP_SUITE(TempDir);
NPIPE_INTEROP_SUITE(Anonymous);
NPIPE_INTEROP_SUITE(Example);
NPIPE_INTEROP_SUITE(MessageMode);
NPIPE_INTEROP_SUITE(SharedMemory);

// ---- The seed programs, unmodified ----

TEST_P(SeedExchange, DotnetServerToNpipeClient) {
    auto server_argv = program("SeedServer", {});
    ASSERT_FALSE(server_argv.empty());
    child server(server_argv);
    ASSERT_TRUE(wait_for_server("test-pipe", 20s)) << server.err();

    auto client = run({cli(), "demo", "client", "--timeout", "10000"}, {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "1\n");
    EXPECT_EQ(client.err, "");
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "2\n");
}

TEST_P(SeedExchange, NpipeServerToDotnetClient) {
    auto client_argv = program("SeedClient", {});
    ASSERT_FALSE(client_argv.empty());
    child server({cli(), "demo", "server"});
    ASSERT_TRUE(wait_for_server("test-pipe", 10s)) << server.err();

    auto client = run(client_argv, {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "1\n");
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "2\n");
    EXPECT_EQ(server.err(), "");
    EXPECT_FALSE(std::filesystem::exists(dir() + "/CoreFxPipe_test-pipe"))
        << "the server removes its socket file when it ends";
}

// ---- 50 MiB through the CLI, to and from .NET ----

TEST_P(Bulk, ConnectSends50MiBToDotnetServer) {
    auto name = unique_pipe_name("bulk");
    child server(peer({"server", name, "recv"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();
    auto data = pattern(bulk_size, 11);

    auto client = run({cli(), "connect", name, "--timeout", "10000"}, data, 60s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "");
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), received_line(data));
}

TEST_P(Bulk, ConnectReceives50MiBFromDotnetServer) {
    auto name = unique_pipe_name("bulk");
    child server(peer({"server", name, "send", std::to_string(bulk_size), "12"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();

    auto client = run({cli(), "connect", name, "--timeout", "10000"}, {}, 60s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out.size(), bulk_size);
    EXPECT_TRUE(client.out == pattern(bulk_size, 12)) << "content differs";
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "sent " + std::to_string(bulk_size) + "\n");
}

TEST_P(Bulk, ConnectRoundTrips50MiBThroughDotnetEchoServer) {
    // Both directions at once: the relay must send and receive concurrently or deadlock.
    auto name = unique_pipe_name("echo");
    child server(peer({"server", name, "echo"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();
    auto data = pattern(bulk_size, 13);

    auto client = run({cli(), "connect", name, "--timeout", "10000"}, data, 60s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out.size(), bulk_size);
    EXPECT_TRUE(client.out == data) << "content differs";
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "echoed " + std::to_string(bulk_size) + "\n");
}

TEST_P(Bulk, ServeReceives50MiBFromDotnetClient) {
    auto name = unique_pipe_name("bulk");
    child server({cli(), "serve", name});
    server.close_stdin();  // nothing to send: the pipe's write side is shut at once
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();

    auto client = run(peer({"client", name, "send", std::to_string(bulk_size), "14"}), {}, 60s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "sent " + std::to_string(bulk_size) + "\n");
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out().size(), bulk_size);
    EXPECT_TRUE(server.out() == pattern(bulk_size, 14)) << "content differs";
}

TEST_P(Bulk, ServeSends50MiBToDotnetClient) {
    auto name = unique_pipe_name("bulk");
    auto data = pattern(bulk_size, 15);
    child server({cli(), "serve", name});
    stdin_feeder feed(server, data);
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();

    auto client = run(peer({"client", name, "recv"}), {}, 60s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, received_line(data));
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "");
}

// ---- Several .NET clients at once ----

TEST_P(ManyClients, ConcurrentDotnetClientsEachGetTheirOwnBytesFromLibraryServer) {
    constexpr int clients = 4;
    constexpr std::size_t size = 4 * mib;
    auto name = unique_pipe_name("many");
    std::vector<named_pipe_server> servers;
    for (int i = 0; i < clients; ++i)
        servers.emplace_back(name, pipe_direction::in_out, max_allowed_server_instances);

    // Every instance echoes its own client; a client checks the echo against its own seed.
    std::vector<std::string> errors(clients);
    std::vector<pid_t> peer_pids(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
        threads.emplace_back([&, i] {
            try {
                auto& s = servers[i];
                s.wait_for_connection(30s);
                peer_pids[i] = s.get_peer_credentials().pid;
                std::vector<std::byte> buffer(64 * 1024);
                while (auto n = s.read(buffer))
                    s.write(std::span(buffer.data(), n));
                s.close();
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });

    std::vector<std::unique_ptr<child>> peers;
    for (int i = 0; i < clients; ++i)
        peers.push_back(std::make_unique<child>(
            peer({"client", name, "roundtrip", std::to_string(size), std::to_string(100 + i)})));
    std::vector<pid_t> client_pids;
    for (auto& p : peers) {
        client_pids.push_back(p->pid());
        EXPECT_EQ(p->wait(60s), 0) << p->err();
        EXPECT_EQ(p->out(), "roundtrip ok " + std::to_string(size) + "\n");
    }
    for (auto& p : peers)
        p->kill();  // a client that hung must not leave a server thread blocked forever
    for (auto& t : threads)
        t.join();
    for (int i = 0; i < clients; ++i)
        EXPECT_EQ(errors[i], "") << "instance " << i;
    // Each instance served a different client, and every client was served.
    std::sort(peer_pids.begin(), peer_pids.end());
    std::sort(client_pids.begin(), client_pids.end());
    EXPECT_EQ(peer_pids, client_pids);
}

TEST_P(ManyClients, ServeWithCommandQueuesDotnetClientsBeyondMaxInstances) {
    constexpr int clients = 16;
    constexpr int max_instances = 4;
    constexpr std::size_t size = 1 * mib;
    auto name = unique_pipe_name("inetd");
    auto log = dir() + "/log";
    // Each connection's command logs its start and end (O_APPEND lines do not interleave), so
    // the log shows how many ran at once.
    child server({cli(), "serve", name, "--max-instances", std::to_string(max_instances), "--",
                  "sh", "-c", "echo start >> '" + log + "'; cat; echo end >> '" + log + "'"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();

    std::vector<std::unique_ptr<child>> peers;
    for (int i = 0; i < clients; ++i)
        peers.push_back(std::make_unique<child>(
            peer({"client", name, "roundtrip", std::to_string(size), std::to_string(200 + i)})));
    for (auto& p : peers) {
        EXPECT_EQ(p->wait(60s), 0) << p->err();
        EXPECT_EQ(p->out(), "roundtrip ok " + std::to_string(size) + "\n");
    }

    // The last command writes "end" after its client has gone; wait for it.
    auto read_log = [&] {
        std::ifstream in(log);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    auto deadline = std::chrono::steady_clock::now() + 10s;
    std::string text;
    while ((text = read_log()).size() < clients * std::string("start\nend\n").size() &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    int running = 0, most = 0, started = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line == "start") {
            ++started;
            most = std::max(most, ++running);
        } else if (line == "end") {
            --running;
        }
    }
    EXPECT_EQ(started, clients) << text;
    EXPECT_EQ(running, 0) << text;
    EXPECT_LE(most, max_instances) << text;

    ::kill(server.pid(), SIGTERM);
    EXPECT_EQ(server.wait(10s), 0) << server.err();
    EXPECT_FALSE(std::filesystem::exists(pipe_path(name)));
}

// ---- PipeDirection.In / Out ----

TEST_P(Direction, DotnetInClientReceivesFromLibraryServer) {
    auto name = unique_pipe_name("in");
    named_pipe_server server(name);
    child client(peer({"client", name, "recv", "--direction", "in"}));
    server.wait_for_connection(30s);
    // The In client shut its write side right after connecting: we read end of stream at once,
    // yet the pipe stays open for writing to it.
    std::byte b[1];
    EXPECT_EQ(server.read(b), 0u);
    EXPECT_TRUE(server.can_write());
    auto data = pattern(8 * mib, 21);
    server.write(bytes(data));
    server.close();
    ASSERT_EQ(client.wait(30s), 0) << client.err();
    EXPECT_EQ(client.out(), received_line(data));
}

TEST_P(Direction, DotnetOutClientSendsToLibraryServer) {
    auto name = unique_pipe_name("out");
    named_pipe_server server(name);
    child client(
        peer({"client", name, "send", std::to_string(8 * mib), "22", "--direction", "out"}));
    server.wait_for_connection(30s);
    auto got = read_to_end(server);
    EXPECT_EQ(got.size(), 8 * mib);
    EXPECT_TRUE(got == pattern(8 * mib, 22)) << "content differs";
    server.close();
    ASSERT_EQ(client.wait(30s), 0) << client.err();
    EXPECT_EQ(client.out(), "sent " + std::to_string(8 * mib) + "\n");
}

TEST_P(Direction, DotnetInClientReceivesFromServe) {
    auto name = unique_pipe_name("in");
    auto data = pattern(8 * mib, 23);
    child server({cli(), "serve", name});
    stdin_feeder feed(server, data);
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();

    auto client = run(peer({"client", name, "recv", "--direction", "in"}), {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, received_line(data));
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "");
}

TEST_P(Direction, DotnetOutClientSendsToServe) {
    auto name = unique_pipe_name("out");
    child server({cli(), "serve", name});
    server.close_stdin();
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();

    auto client =
        run(peer({"client", name, "send", std::to_string(8 * mib), "24", "--direction", "out"}), {},
            30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "sent " + std::to_string(8 * mib) + "\n");
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out().size(), 8 * mib);
    EXPECT_TRUE(server.out() == pattern(8 * mib, 24)) << "content differs";
}

TEST_P(Direction, NpipeInClientReceivesFromDotnetOutServer) {
    auto name = unique_pipe_name("in");
    child server(
        peer({"server", name, "send", std::to_string(8 * mib), "25", "--direction", "out"}));
    named_pipe_client client(".", name, pipe_direction::in);
    client.connect(20s);
    EXPECT_TRUE(client.can_read());
    EXPECT_FALSE(client.can_write());
    auto got = read_to_end(client);
    EXPECT_EQ(got.size(), 8 * mib);
    EXPECT_TRUE(got == pattern(8 * mib, 25)) << "content differs";
    EXPECT_EQ(client.read_byte(), -1);
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "sent " + std::to_string(8 * mib) + "\n");
}

TEST_P(Direction, NpipeOutClientSendsToDotnetInServer) {
    auto name = unique_pipe_name("out");
    child server(peer({"server", name, "recv", "--direction", "in"}));
    named_pipe_client client(".", name, pipe_direction::out);
    client.connect(20s);
    EXPECT_FALSE(client.can_read());
    EXPECT_TRUE(client.can_write());
    auto data = pattern(8 * mib, 26);
    client.write(bytes(data));
    client.close();
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), received_line(data));
}

// ---- CurrentUserOnly, end of stream, broken pipes ----

TEST_P(CurrentUserOnly, DotnetClientReadsUntilEndOfStream) {
    auto name = unique_pipe_name("cuo");
    pipe_options options;
    options.current_user_only = true;
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    struct stat st {};
    ASSERT_EQ(::stat(server.socket_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);

    child client(peer({"client", name, "bytes", "--current-user-only"}));
    server.wait_for_connection(30s);
    auto cred = server.get_peer_credentials();
    EXPECT_EQ(cred.uid, ::geteuid());
    EXPECT_EQ(cred.pid, client.pid());
    EXPECT_EQ(server.get_impersonation_user_name(), ::getpwuid(::geteuid())->pw_name);
    server.write_byte(1);
    server.write_byte(2);
    server.write_byte(255);
    server.close();
    ASSERT_EQ(client.wait(30s), 0) << client.err();
    EXPECT_EQ(client.out(), "1\n2\n255\n-1\nread 0\n");
}

TEST_P(CurrentUserOnly, ServerDropsDotnetClientOfAnotherUser) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to run the .NET client as another user";
    // Let the other user reach the socket and the program, so that only npipe's check on the
    // peer's uid stands in the way.
    auto name = unique_pipe_name("cuo");
    pipe_options options;
    options.current_user_only = true;
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    child::options as_nobody;
    as_nobody.uid = nobody;
    as_nobody.gid = nobody;

    // Mode 0600 alone keeps the other user out: .NET fails to connect.
    auto denied =
        run(peer_for_anyone({"client", name, "bytes", "--timeout", "5000"}), {}, 30s, as_nobody);
    EXPECT_EQ(denied.exit_code, 3) << denied.err;
    EXPECT_EQ(denied.out, "error SocketException\n") << denied.err;
    // Mono says "Access denied", .NET 10 "Permission denied".
    EXPECT_NE(denied.err.find("denied"), std::string::npos) << denied.err;

    // With the mode opened up, the uid check still drops the client before a byte moves, and
    // the wait goes on to the next, allowed, client.
    ASSERT_EQ(::chmod(server.socket_path().c_str(), 0666), 0);
    std::string wait_error;
    pid_t served = 0;
    std::thread waiter([&] {
        try {
            server.wait_for_connection(30s);
            served = server.get_peer_credentials().pid;
            server.write_byte(7);
            server.close();
        } catch (const std::exception& e) {
            wait_error = e.what();
        }
    });
    auto dropped =
        run(peer_for_anyone({"client", name, "bytes", "--timeout", "5000"}), {}, 30s, as_nobody);
    EXPECT_EQ(dropped.exit_code, 0) << dropped.err;
    EXPECT_EQ(dropped.out, "-1\nread 0\n");
    child allowed(peer({"client", name, "bytes"}));
    EXPECT_EQ(allowed.wait(30s), 0) << allowed.err();
    EXPECT_EQ(allowed.out(), "7\n-1\nread 0\n");
    server.close();  // wakes the waiter if the allowed client never arrived
    waiter.join();
    EXPECT_EQ(wait_error, "");
    EXPECT_EQ(served, allowed.pid());
}

TEST_P(EndOfStream, NpipeClientReadsEndOfStreamAfterDotnetServerCloses) {
    auto name = unique_pipe_name("eos");
    child server(peer({"server", name, "send", "3", "31"}));
    named_pipe_client client(name);
    client.connect(20s);
    auto expected = pattern(3, 31);
    for (unsigned char c : expected)
        EXPECT_EQ(client.read_byte(), static_cast<int>(c));
    EXPECT_EQ(client.read_byte(), -1);
    std::byte buffer[16];
    EXPECT_EQ(client.read(buffer), 0u) << "end of stream stays end of stream";
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "sent 3\n");
}

TEST_P(EndOfStream, WriteAfterDotnetPeerIsGoneFailsWithBrokenPipeNotSignal) {
    // With SIGPIPE at its default action, a library that let one through would kill this test.
    auto old_handler = ::signal(SIGPIPE, SIG_DFL);
    auto name = unique_pipe_name("gone");
    {
        named_pipe_server server(name);
        child::options no_stdin;
        no_stdin.capture_stdin = false;
        child client(peer({"client", name, "hangup"}), no_stdin);
        server.wait_for_connection(30s);
        ASSERT_EQ(client.wait(30s), 0) << client.err();
        EXPECT_EQ(client.out(), "closed\n");
        std::byte b[1];
        EXPECT_EQ(server.read(b), 0u);

        auto data = pattern(1 * mib, 41);
        std::error_code ec;
        server.write(bytes(data), ec);
        EXPECT_EQ(ec, errc::broken_pipe) << ec.message();
        try {
            server.write(bytes(data));
            ADD_FAILURE() << "write to a departed peer succeeded";
        } catch (const pipe_error& e) {
            EXPECT_EQ(e.code(), errc::broken_pipe);
            EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        }
        EXPECT_THROW(server.write_byte(1), pipe_error);
    }
    ::signal(SIGPIPE, old_handler);
}

TEST_P(EndOfStream, ConnectEndsWithoutSignalWhenDotnetServerHangsUp) {
    auto name = unique_pipe_name("gone");
    child server(peer({"server", name, "hangup"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();
    auto client = run({cli(), "connect", name, "--timeout", "10000"}, pattern(16 * mib, 42), 30s);
    // Whether the peer's hang-up is seen as end of stream (0) or as a reset (1, with a message)
    // depends on timing; a signal or a hang is wrong either way.
    EXPECT_TRUE(client.exit_code == 0 || client.exit_code == 1)
        << "exit " << client.exit_code << ": " << client.err;
    EXPECT_LE(line_count(client.err), 1) << client.err;
    EXPECT_EQ(server.wait(30s), 0) << server.err();
}

// ---- A live .NET server keeps its name ----

TEST_P(NameRules, ServeRefusesNameOfLiveDotnetServerWithoutDisturbingIt) {
    auto name = unique_pipe_name("live");
    child dotnet(peer({"server", name, "send", "5", "51"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << dotnet.err();

    auto second = run({cli(), "serve", name}, {}, 10s);
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_EQ(line_count(second.err), 1) << second.err;
    EXPECT_NE(second.err.find("in use"), std::string::npos) << second.err;
    EXPECT_NE(second.err.find(name), std::string::npos) << second.err;

    // The .NET server was neither replaced nor handed a bogus client: ours is its first.
    named_pipe_client client(name);
    client.connect(5s);
    EXPECT_EQ(read_to_end(client), pattern(5, 51));
    ASSERT_EQ(dotnet.wait(30s), 0) << dotnet.err();
    EXPECT_EQ(dotnet.out(), "sent 5\n");
}

// ---- Many async .NET clients ----

TEST_P(ManyClients, TwoHundredAsyncDotnetClientsAgainstServeEcho) {
    auto name = unique_pipe_name("echo200");
    child server({cli(), "serve", name, "--echo"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    // ConnectAsync, WriteAsync and ReadAsync, all 200 awaited together in one .NET process.
    auto clients = run(program("AsyncEchoClients", {name, "200", "16384"}), {}, 120s);
    EXPECT_EQ(clients.exit_code, 0) << clients.out << clients.err;
    EXPECT_EQ(clients.out, "ok 200\n") << clients.err;
    ::kill(server.pid(), SIGTERM);
    EXPECT_EQ(server.wait(10s), 0) << server.err();
    EXPECT_FALSE(std::filesystem::exists(pipe_path(name)));
}

// ---- A .NET server's instance limit ----

TEST_P(ManyClients, DotnetServerWithNInstancesServesNPlusTwoNpipeClients) {
    constexpr int instances = 3, clients = instances + 2;
    auto name = unique_pipe_name("inst");
    child server(
        program("ServerInstances", {name, std::to_string(instances), std::to_string(clients)}));
    ASSERT_TRUE(server.wait_for_output("extra: ", 20s)) << server.err();
    // Both runtimes count instances within the process: an N+1st throws.
    ASSERT_TRUE(server.wait_for_output("\n", 5s));
    EXPECT_EQ(server.out(), "extra: IOException\n") << server.err();

    // All N+2 clients connect at once: the N instances take N, the other two wait in the
    // listening socket's backlog (connected as far as the kernel goes) until an instance frees.
    std::vector<std::unique_ptr<named_pipe_client>> pipes;
    for (int i = 0; i < clients; ++i) {
        pipes.push_back(std::make_unique<named_pipe_client>(name));
        pipes.back()->connect(20s);
    }
    for (int i = clients - 1; i >= 0; --i) {  // the queued ones first: they wait for the others
        auto data = pattern(1000, static_cast<std::uint32_t>(300 + i));
        pipes[static_cast<std::size_t>(i)]->write(bytes(data));
    }
    for (int i = 0; i < clients; ++i) {
        auto& p = *pipes[static_cast<std::size_t>(i)];
        EXPECT_EQ(read_n(p, 1000), pattern(1000, static_cast<std::uint32_t>(300 + i)))
            << "client " << i;
        p.close();  // frees the instance for a queued client
    }
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "extra: IOException\nserved " + std::to_string(clients) + "\n");
}

// ---- CurrentUserOnly on the .NET side ----

TEST_P(CurrentUserOnly, DotnetServerServesNpipeClientOfSameUser) {
    auto name = unique_pipe_name("cuo");
    child server(peer({"server", name, "send", "5", "61", "--current-user-only"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();
    struct stat st {};
    ASSERT_EQ(::stat(pipe_path(name).c_str(), &st), 0);
    // .NET 10 leaves the mode to the umask (0600 only from .NET 11); so does Mono.
    EXPECT_EQ(st.st_mode & 0777, 0777u & ~current_umask()) << std::oct << st.st_mode;
    auto client = run({cli(), "connect", name, "--timeout", "10000"}, {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, pattern(5, 61));
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "sent 5\n");
}

TEST_P(CurrentUserOnly, DotnetServerRefusesNpipeClientOfAnotherUser) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to run the npipe client as another user";
    auto name = unique_pipe_name("cuo");
    child server(peer({"server", name, "send", "5", "62", "--current-user-only"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();
    // Open the directory and the socket, so that only .NET's check on the peer's uid decides.
    ASSERT_EQ(::chmod(dir().c_str(), 01777), 0);
    ASSERT_EQ(::chmod(pipe_path(name).c_str(), 0666), 0);
    child::options as_nobody;
    as_nobody.uid = nobody;
    as_nobody.gid = nobody;
    auto client = run({cli(), "connect", name, "--timeout", "10000"}, {}, 30s, as_nobody);
    // The kernel connected us; .NET accepted, read our uid, and closed before a byte moved.
    EXPECT_EQ(client.out, "") << client.err;
    EXPECT_EQ(client.exit_code, 0) << client.err;
    ASSERT_EQ(server.wait(30s), 3) << server.err();
    EXPECT_EQ(server.out(), "error UnauthorizedAccessException\n") << server.err();
}

TEST_P(CurrentUserOnly, NpipeClientRefusesDotnetServerOfAnotherUser) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to run the .NET server as another user";
    auto name = unique_pipe_name("cuo");
    child::options as_nobody;
    as_nobody.uid = nobody;
    as_nobody.gid = nobody;
    auto argv = peer_for_anyone({"server", name, "recv"});
    child server(argv, as_nobody);
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();
    ASSERT_EQ(::chmod(pipe_path(name).c_str(), 0666), 0);  // whatever nobody's umask made it
    pipe_options options;
    options.current_user_only = true;
    named_pipe_client client(".", name, pipe_direction::in_out, options);
    try {
        client.connect(5s);
        ADD_FAILURE() << "connected to a server of another user";
    } catch (const pipe_error& e) {
        EXPECT_EQ(e.code(), errc::access_denied) << e.what();
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
    // The .NET server saw a client come and go before a byte moved.
    EXPECT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), received_line("")) << server.err();
}

// ---- Name rules across runtimes ----

TEST_P(NameRules, FirstInstanceDotnetServerAndNpipeServerEachRefuseTheOther) {
    // A live .NET FirstPipeInstance server: npipe's server refuses its name, touching nothing.
    auto name = unique_pipe_name("first");
    child dotnet_server(peer({"server", name, "send", "5", "71", "--first-instance"}));
    if (!dotnet()) {
        // Mono has no FirstPipeInstance: its PipeOptions check refuses the unknown flag.
        EXPECT_EQ(dotnet_server.wait(20s), 3);
        EXPECT_EQ(dotnet_server.out(), "error ArgumentOutOfRangeException\n")
            << dotnet_server.err();
        return;
    }
    ASSERT_TRUE(wait_for_server(name, 20s)) << dotnet_server.err();
    auto second = run({cli(), "serve", name}, {}, 10s);
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_NE(second.err.find("in use"), std::string::npos) << second.err;
    named_pipe_client client(name);
    client.connect(5s);
    EXPECT_EQ(read_to_end(client), pattern(5, 71));
    ASSERT_EQ(dotnet_server.wait(30s), 0) << dotnet_server.err();

    // A live npipe server: the .NET FirstPipeInstance server fails its bind and unlinks nothing.
    named_pipe_server server(name);
    struct stat before {};
    ASSERT_EQ(::stat(server.socket_path().c_str(), &before), 0);
    auto refused = run(peer({"server", name, "send", "5", "72", "--first-instance"}), {}, 30s);
    EXPECT_EQ(refused.exit_code, 3) << refused.err;
    EXPECT_EQ(refused.out, "error UnauthorizedAccessException\n") << refused.err;
    struct stat after {};
    ASSERT_EQ(::stat(server.socket_path().c_str(), &after), 0);
    EXPECT_EQ(after.st_ino, before.st_ino);
    named_pipe_client ours(name);
    ours.connect(5s);
    server.wait_for_connection(5s);
    ours.write_byte(9);
    EXPECT_EQ(server.read_byte(), 9);
}

TEST_P(NameRules, DotnetServerTakesOverLiveServeWhichSaysSoAndExits) {
    auto name = unique_pipe_name("hijack");
    child ours({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << ours.err();

    // Without FirstPipeInstance (and on Mono, which lacks it), .NET's server constructor unlinks
    // whatever sits at the path and binds its own socket there (dotnet/runtime #131203).
    child theirs(peer({"server", name, "send", "5", "73"}));
    // npipe's waiting server notices that its file is gone and says so, instead of serving a
    // socket no client can reach any more.
    ASSERT_EQ(ours.wait(20s), 1) << ours.err();
    EXPECT_EQ(line_count(ours.err()), 1) << ours.err();
    EXPECT_NE(ours.err().find(name), std::string::npos) << ours.err();
    EXPECT_NE(ours.err().find("replaced by another server"), std::string::npos) << ours.err();

    // The .NET server has the name; ours left its file alone on the way out. (The new file
    // often gets the old one's inode number back: only the unlink itself tells them apart.)
    ASSERT_TRUE(wait_for_server(name, 20s)) << theirs.err();
    named_pipe_client client(name);
    client.connect(5s);
    EXPECT_EQ(read_to_end(client), pattern(5, 73));
    ASSERT_EQ(theirs.wait(30s), 0) << theirs.err();
}

TEST_P(NameRules, LibraryServerWaitFailsWhenDotnetTakesItsName) {
    auto name = unique_pipe_name("hijack");
    named_pipe_server server(name);
    child theirs(peer({"server", name, "send", "5", "74"}));
    try {
        server.wait_for_connection(30s);
        ADD_FAILURE() << "the wait went on for a socket nobody can reach";
    } catch (const pipe_error& e) {
        EXPECT_EQ(e.code(), errc::name_taken_over) << e.what();
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
    server.close();
    ASSERT_TRUE(wait_for_server(name, 20s)) << theirs.err();
    named_pipe_client client(name);
    client.connect(5s);
    EXPECT_EQ(read_to_end(client), pattern(5, 74));
    ASSERT_EQ(theirs.wait(30s), 0) << theirs.err();
}

TEST_P(NameRules, DotnetServerTakesOverEchoServeWhichSaysSoAndExits) {
    auto name = unique_pipe_name("echo-hijack");
    child ours({cli(), "serve", name, "--echo"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << ours.err();
    {
        named_pipe_client client(name);
        client.connect(5s);
        client.write(bytes("before"));
        EXPECT_EQ(read_n(client, 6), "before");
    }
    // The same takeover as above, of the asynchronous server (npipe::asio's acceptor): its
    // pending accept fails with name_taken_over and serve --echo exits with one line.
    child theirs(peer({"server", name, "send", "5", "75"}));
    ASSERT_EQ(ours.wait(20s), 1) << ours.err();
    EXPECT_EQ(line_count(ours.err()), 1) << ours.err();
    EXPECT_NE(ours.err().find("'" + name + "'"), std::string::npos) << ours.err();
    EXPECT_NE(ours.err().find("replaced by another server"), std::string::npos) << ours.err();
    // The .NET server keeps the name: ours left its file alone on the way out.
    ASSERT_TRUE(wait_for_server(name, 20s)) << theirs.err();
    named_pipe_client client(name);
    client.connect(5s);
    EXPECT_EQ(read_to_end(client), pattern(5, 75));
    ASSERT_EQ(theirs.wait(30s), 0) << theirs.err();
}

TEST_P(NameRules, NpipeReplacesCrashedDotnetServersStaleSocket) {
    auto name = unique_pipe_name("stale");
    {
        child crashed(peer({"server", name, "recv"}));
        ASSERT_TRUE(wait_for_server(name, 20s)) << crashed.err();
        crashed.kill(SIGKILL);
    }
    ASSERT_TRUE(std::filesystem::exists(pipe_path(name))) << "a killed server leaves its file";
    child ours({cli(), "serve", name});
    stdin_feeder feed(ours, "after the crash");
    ASSERT_TRUE(wait_for_server(name, 10s)) << ours.err();
    auto client = run(peer({"client", name, "recv", "--timeout", "10000"}), {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, received_line("after the crash"));
    EXPECT_EQ(ours.wait(30s), 0) << ours.err();
}

// ---- Waiting to connect ----

// A .NET client started with `connect_flags` before any server exists; an npipe server appears
// later and sends it a few bytes.
void expect_client_waits_for_late_server(const InteropTest& t,
                                         const std::vector<std::string>& connect_flags) {
    auto name = unique_pipe_name("late");
    std::vector<std::string> args{"client", name, "recv"};
    args.insert(args.end(), connect_flags.begin(), connect_flags.end());
    child client(t.peer(args));
    named_pipe_server server(name);
    server.wait_for_connection(30s);
    server.write(bytes("late"));
    server.close();
    // The client prints its line once it has read the bytes and the end of the stream.
    ASSERT_TRUE(client.wait_for_output(received_line("late"), 30s))
        << "stdout: " << client.out() << "\nstderr: " << client.err();
    auto exited = client.wait(30s);
    ASSERT_EQ(exited, 0) << "stdout: " << client.out() << "\nstderr: " << client.err();
    EXPECT_EQ(client.out(), received_line("late"));
}

TEST_P(ConnectWait, ConnectAsyncWithTimeoutWaitsForNpipeServerThatAppears) {
    expect_client_waits_for_late_server(*this, {"--async", "--timeout", "30000"});
}

TEST_P(ConnectWait, ConnectAsyncWithCancellationWaitsForNpipeServerThatAppears) {
    expect_client_waits_for_late_server(*this, {"--cancel-after", "30000"});
}

TEST_P(ConnectWait, ConnectAsyncTimesOutWithoutServer) {
    auto name = unique_pipe_name("none");
    auto client = run(peer({"client", name, "recv", "--async", "--timeout", "200"}), {}, 30s);
    EXPECT_EQ(client.exit_code, 3) << client.err;
    EXPECT_EQ(client.out, "error TimeoutException\n") << client.err;
}

TEST_P(ConnectWait, ConnectAsyncCancelledWithoutServer) {
    auto name = unique_pipe_name("none");
    auto client = run(peer({"client", name, "recv", "--cancel-after", "200"}), {}, 30s);
    EXPECT_EQ(client.exit_code, 3) << client.err;
    EXPECT_TRUE(client.out == "error OperationCanceledException\n" ||
                client.out == "error TaskCanceledException\n")
        << client.out << client.err;
}

TEST_P(ConnectWait, DotnetConnectWhileServeIsAtMaxInstances) {
    auto name = unique_pipe_name("busy");
    child server({cli(), "serve", name, "--max-instances", "1", "--", "cat"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    named_pipe_client first(name);
    first.connect(10s);
    first.write(bytes("one"));
    EXPECT_EQ(read_n(first, 3), "one") << "the only instance serves the first client";

    // .NET's Connect returns as soon as the kernel queues it; the echo comes once the instance
    // is free. Hold the first client while the .NET client is queued, then let it go.
    child second(peer({"client", name, "roundtrip", "100000", "75", "--timeout", "10000"}));
    first.write(bytes("two"));
    EXPECT_EQ(read_n(first, 3), "two");
    first.close();
    ASSERT_EQ(second.wait(30s), 0) << second.err();
    EXPECT_EQ(second.out(), "roundtrip ok 100000\n");
    ::kill(server.pid(), SIGTERM);
    EXPECT_EQ(server.wait(10s), 0) << server.err();
}

// ---- Where the socket goes: TMPDIR, TMP, TEMP ----

TEST_P(TempDir, PrivateTmpdirHoldsBothRuntimesSockets) {
    // Every test here runs under its own TMPDIR: check that the .NET peer's socket lands in it.
    auto name = unique_pipe_name("tmpdir");
    child server(peer({"server", name, "send", "3", "81"}));
    ASSERT_TRUE(wait_for_server(name, 20s)) << server.err();
    EXPECT_EQ(pipe_path(name), dir() + "/CoreFxPipe_" + name);
    EXPECT_TRUE(std::filesystem::exists(dir() + "/CoreFxPipe_" + name));
    named_pipe_client client(name);
    client.connect(5s);
    EXPECT_EQ(read_to_end(client), pattern(3, 81));
    EXPECT_EQ(server.wait(30s), 0) << server.err();
    auto temp = run(peer({"temppath"}), {}, 30s);
    EXPECT_EQ(temp.out, dir() + "/\n");
}

TEST_P(TempDir, TmpAndTempWithoutTmpdir) {
    // npipe follows .NET: $TMPDIR, else /tmp/; TMP and TEMP mean nothing. Mono falls back to
    // TMP, then TEMP, so a Mono peer and npipe disagree when only those are set.
    temp_dir tmp, tempd;
    const char* saved = std::getenv("TMPDIR");
    std::string saved_value = saved ? saved : "";
    ::unsetenv("TMPDIR");
    child::options env;
    env.env = {{"TMP", tmp.path()}, {"TEMP", tempd.path()}};
    auto both = run(peer({"temppath"}), {}, 30s, env);
    env.env = {{"TEMP", tempd.path()}};
    auto temp_only = run(peer({"temppath"}), {}, 30s, env);
    env.env = {{"TMPDIR", ""}};
    auto empty = run(peer({"temppath"}), {}, 30s, env);
    ::setenv("TMPDIR", saved_value.c_str(), 1);
    if (dotnet()) {
        EXPECT_EQ(both.out, "/tmp/\n") << both.err;
        EXPECT_EQ(temp_only.out, "/tmp/\n") << temp_only.err;
        EXPECT_EQ(empty.out, "/tmp/\n") << empty.err;
    } else {
        EXPECT_EQ(both.out, tmp.path() + "/\n") << both.err;
        EXPECT_EQ(temp_only.out, tempd.path() + "/\n") << temp_only.err;
        // An empty TMPDIR is taken as is: Mono's pipes land in the working directory.
        EXPECT_EQ(empty.out, "\n") << empty.err;
    }
}

// ---- Anonymous pipes ----

// `npipe anon VERB -- <AnonChild DIRECTION {}>` moves 8 MiB through the child and back out.
void expect_npipe_parent_moves_data(const std::vector<std::string>& child_argv,
                                    const std::string& verb, std::uint32_t seed) {
    auto data = pattern(8 * mib, seed);
    auto argv = std::vector<std::string>{cli(), "anon", verb, "--"};
    argv.insert(argv.end(), child_argv.begin(), child_argv.end());
    auto r = run(argv, data, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), data.size());
    EXPECT_TRUE(r.out == data) << "content differs";
}

TEST_P(Anonymous, NpipeParentSendsToDotnetChild) {
    expect_npipe_parent_moves_data(program("AnonChild", {"in", "{}"}), "send", 91);
}

TEST_P(Anonymous, NpipeParentReceivesFromDotnetChild) {
    expect_npipe_parent_moves_data(program("AnonChild", {"out", "{}"}), "recv", 92);
}

TEST_P(Anonymous, DotnetParentSendsToNpipeAnonRead) {
    auto r =
        run(program("AnonParent", {std::to_string(8 * mib), "93", cli(), "anon", "read", "{}"}), {},
            60s);
    if (!dotnet()) {
        // Mono's Process.Start closes every descriptor above 2 in the child: the handle string
        // names nothing there, and `npipe anon read` says so.
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_EQ(r.out, "") << r.err;
        EXPECT_NE(r.err.find("not an open file descriptor"), std::string::npos) << r.err;
        return;
    }
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), 8 * mib);
    EXPECT_TRUE(r.out == pattern(8 * mib, 93)) << "content differs";
}

// ---- Message mode, which .NET has only on Windows ----

TEST_P(MessageMode, DotnetByteClientIsRefusedAtOnceByMessageServer) {
    auto name = unique_pipe_name("msg");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    // A 20 s connect timeout: a TimeoutException would mean the refusal was retried until then.
    auto r = run(program("ByteClientToMessageServer", {name, "20000"}), {}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("refused: System.Net.Sockets.SocketException ProtocolType"),
              std::string::npos)
        << r.out << r.err;
    // The server still serves npipe clients.
    named_pipe_client client(name);
    client.connect(5s);
    server.wait_for_connection(5s);
    server.write(bytes("still fine"));
    EXPECT_EQ(read_n(client, 10), "still fine");
}

// ---- Shared memory, which only npipe peers that both ask for it use ----

// A server that offers shared memory serves a .NET or Mono client on the plain wire, both ways,
// and an opted-in npipe client beside it through shared memory.
TEST_P(SharedMemory, DotnetClientOfAnOptedInServerGetsThePlainWire) {
    auto name = unique_pipe_name("shm");
    npipe::pipe_options options;
    options.shared_memory = true;
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    ASSERT_TRUE(std::filesystem::exists(server.socket_path() + ".npipe-shm"));

    child sender(peer({"client", name, "send", std::to_string(8 * mib), "41"}));
    server.wait_for_connection(30s);
    auto got = read_to_end(server);
    EXPECT_EQ(got.size(), 8 * mib);
    EXPECT_TRUE(got == pattern(8 * mib, 41)) << "content differs";
    ASSERT_EQ(sender.wait(30s), 0) << sender.err();
    server.disconnect();

    child receiver(peer({"client", name, "recv"}));
    server.wait_for_connection(30s);
    auto data = pattern(8 * mib, 42);
    server.write(bytes(data));
    server.disconnect();
    ASSERT_EQ(receiver.wait(30s), 0) << receiver.err();
    EXPECT_EQ(receiver.out(), received_line(data));

    named_pipe_client npipe_client(".", name, pipe_direction::in_out, options);
    npipe_client.connect(5s);
    server.wait_for_connection(5s);
    std::ifstream maps("/proc/self/maps");
    std::string mapped((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
    EXPECT_NE(mapped.find("/memfd:npipe-shm"), std::string::npos) << "npipe ends share memory";
    server.write(bytes("still fine"));
    EXPECT_EQ(read_n(npipe_client, 10), "still fine");
}

// ---- The C# example (examples/dotnet) with the C++ seed examples ----

#ifdef NPIPE_EXAMPLES_DIR
class example_fixture {
  public:
    // The example's command on this runtime: Mono runs it compiled by mcs, .NET its build.
    static std::vector<std::string> command(csharp_runtime runtime, const std::string& dir,
                                            const std::string& role) {
        if (runtime == csharp_runtime::mono) {
            auto exe = dir + "/SeedPipe.exe";
            auto r = run({"/usr/bin/mcs", "-out:" + exe, NPIPE_EXAMPLE_CS}, {}, 120s);
            EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
            return mono_command(exe, {role});
        }
#ifdef NPIPE_EXAMPLE_DOTNET_DLL
        return {NPIPE_DOTNET, NPIPE_EXAMPLE_DOTNET_DLL, role};
#else
        return {};
#endif
    }
};

TEST_P(Example, DotnetServerWithSeedClientExample) {
    auto argv = example_fixture::command(GetParam(), dir(), "server");
    ASSERT_FALSE(argv.empty()) << "examples/dotnet was not built";
    child server(argv);
    ASSERT_TRUE(wait_for_server("test-pipe", 20s)) << server.err();
    auto client = run({std::string(NPIPE_EXAMPLES_DIR) + "/example_seed_client"}, {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "1\n");
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "2\n");
}

TEST_P(Example, DotnetClientWithSeedServerExample) {
    auto argv = example_fixture::command(GetParam(), dir(), "client");
    ASSERT_FALSE(argv.empty()) << "examples/dotnet was not built";
    child server({std::string(NPIPE_EXAMPLES_DIR) + "/example_seed_server"});
    ASSERT_TRUE(wait_for_server("test-pipe", 10s)) << server.err();
    auto client = run(argv, {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "1\n");
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "2\n");
}
#endif

}  // namespace
}  // namespace npipe::test
