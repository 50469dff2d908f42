// npipe.exe, the CLI on Windows, run as separate processes with files as stdin and stdout:
// copies between two npipe.exe processes and between npipe.exe and a plain Win32 peer
// (win32_peer.c), the one-client rule, timeouts, errors, the echo server (serve --echo), and
// what --help says Windows lacks.
// Under Wine, what Wine lacks is skipped with the reason (NPIPE_SKIP_ON_WINE).
#include <windows.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/npipe.hpp"
#include "support/test_support.hpp"
#include "win_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using npipe::test::unique_pipe_name;
using npipe::test::windows::bytes_waiting;
using npipe::test::windows::console_group_process;
using npipe::test::windows::peer_process;
using npipe::test::windows::program_path;

constexpr std::size_t mib = std::size_t{1} << 20;

// What Wine lacks for a copy between two npipe.exe processes (README, "Windows").
constexpr const char* no_empty_writes =
    "Wine drops empty writes on byte pipes, npipe's stand-in for a half-close on Windows, so "
    "neither npipe.exe learns that the other's input ended";

// Byte i of pattern `seed`, as win32_peer.c computes it.
std::string pattern(std::size_t size, int seed) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        out[i] = static_cast<char>(
            static_cast<unsigned char>(i * 131u + (i >> 12) + static_cast<unsigned>(seed) * 7u));
    return out;
}

// A file in the temp directory, removed at the end; handles for a child's stdin/stdout/stderr.
class temp_file {
  public:
    explicit temp_file(const std::string& content = {}) {
        char dir[MAX_PATH], name[MAX_PATH];
        if (!::GetTempPathA(MAX_PATH, dir) || !::GetTempFileNameA(dir, "npc", 0, name))
            throw std::runtime_error("cannot create a temporary file");
        path_ = name;
        std::ofstream(path_, std::ios::binary) << content;
    }
    ~temp_file() {
        close();
        ::DeleteFileA(path_.c_str());
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;

    HANDLE open_read() {
        return keep(
            ::CreateFileA(path_.c_str(), GENERIC_READ, share, nullptr, OPEN_EXISTING, 0, nullptr));
    }
    HANDLE open_write() {
        return keep(::CreateFileA(path_.c_str(), GENERIC_WRITE, share, nullptr, TRUNCATE_EXISTING,
                                  0, nullptr));
    }
    /// Closes our handles (after the child has started, it holds its own).
    void close() {
        for (HANDLE h : handles_)
            ::CloseHandle(h);
        handles_.clear();
    }
    std::string content() const {
        std::ifstream in(path_, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }

  private:
    static constexpr DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
    HANDLE keep(HANDLE h) {
        if (h == INVALID_HANDLE_VALUE)
            throw std::runtime_error("cannot open " + path_);
        handles_.push_back(h);
        return h;
    }
    std::string path_;
    std::vector<HANDLE> handles_;
};

// npipe.exe with `args`, its stdin from `in`, stdout to `out`, stderr to `err`.
struct npipe_run {
    npipe_run(const std::vector<std::string>& args, const std::string& input = {})
        : in(input), proc(args, "npipe.exe", redirect()) {
        in.close();
        out.close();
        err.close();
    }
    npipe::process_options redirect() {
        npipe::process_options o;
        o.stdin_fd = in.open_read();
        o.stdout_fd = out.open_write();
        o.stderr_fd = err.open_write();
        return o;
    }
    temp_file in, out, err;
    peer_process proc;
};

void wait_for_server(const std::string& name) {
    ASSERT_TRUE(npipe::test::windows::server_listens(name)) << "no server on " << name;
}

// What npipe.exe's copies end with: a byte pipe's half-close is an empty write, and the other
// direction stays open.
TEST(WindowsHalfClose, ShutdownWriteKeepsTheOtherDirectionAndEndsThePeersStream) {
    auto name = unique_pipe_name("half-close");
    npipe::named_pipe_server server(name);
    npipe::named_pipe_client client(name);
    client.connect(20s);
    server.wait_for_connection(20s);
    server.write("before the end");
    server.shutdown_write();
    EXPECT_FALSE(server.can_write());
    client.write("still heard");
    EXPECT_EQ(npipe::test::pipe_io::read_n(server, 11), "still heard");
    EXPECT_EQ(npipe::test::pipe_io::read_n(client, 14), "before the end");
    NPIPE_SKIP_ON_WINE(no_empty_writes);
    std::byte b[8];
    EXPECT_EQ(client.read(b), 0u);  // the end of the server's data, the pipe still open
    client.write("after it");
    EXPECT_EQ(npipe::test::pipe_io::read_n(server, 8), "after it");
}

TEST(NpipeExe, CopiesFiftyMiBBothWaysBetweenServeAndConnect) {
    auto name = unique_pipe_name("cli-copy");
    const auto a = pattern(50 * mib, 1), b = pattern(50 * mib, 2);
    // On Windows both ends learn that the other's input ended and exit 0 at once. Under Wine
    // they cannot (no_empty_writes): the server's idle timeout ends the copy there, after every
    // byte has moved, and says so.
    npipe_run serve({"serve", name, "--idle-timeout", "10s"}, a);
    npipe_run connect({"connect", name, "--timeout", "20s"}, b);
    EXPECT_EQ(connect.proc.wait(120s), 0ul) << connect.err.content();
    if (const char* wine = npipe::test::windows::wine_version()) {
        EXPECT_EQ(serve.proc.wait(120s), 1ul) << serve.err.content();
        EXPECT_NE(serve.err.content().find("idle timeout"), std::string::npos)
            << serve.err.content();
        std::printf("note: under Wine %s the copy ends by the idle timeout: %s\n", wine,
                    no_empty_writes);
    } else {
        EXPECT_EQ(serve.proc.wait(120s), 0ul) << serve.err.content();
    }
    EXPECT_TRUE(serve.out.content() == b) << "serve's output is not what connect sent";
    EXPECT_TRUE(connect.out.content() == a) << "connect's output is not what serve sent";
}

TEST(NpipeExe, ServeCopiesBothWaysWithAPlainWin32Client) {
    auto name = unique_pipe_name("cli-w32c");
    const std::size_t size = 20 * mib;
    npipe_run serve({"serve", name}, pattern(size, 1));
    peer_process peer({"copy-client", name, std::to_string(size)}, "win32_peer.exe");
    EXPECT_EQ(peer.wait(120s), 0ul) << "the Win32 client received something else (3) or failed";
    EXPECT_EQ(serve.proc.wait(60s), 0ul) << serve.err.content();
    EXPECT_TRUE(serve.out.content() == pattern(size, 2));
}

TEST(NpipeExe, ConnectCopiesBothWaysWithAPlainWin32Server) {
    auto name = unique_pipe_name("cli-w32s");
    const std::size_t size = 20 * mib;
    peer_process peer({"copy-server", name, std::to_string(size)}, "win32_peer.exe");
    wait_for_server(name);
    npipe_run connect({"connect", name, "--timeout", "20s"}, pattern(size, 1));
    EXPECT_EQ(peer.wait(120s), 0ul) << "the Win32 server received something else (3) or failed";
    EXPECT_EQ(connect.proc.wait(60s), 0ul) << connect.err.content();
    EXPECT_TRUE(connect.out.content() == pattern(size, 2));
}

TEST(NpipeExe, ConnectWithoutAServerFailsNamingThePipe) {
    auto name = unique_pipe_name("cli-none");
    npipe_run connect({"connect", name, "--timeout", "300ms"});
    EXPECT_EQ(connect.proc.wait(30s), 1ul);
    auto err = connect.err.content();
    EXPECT_NE(err.find(name), std::string::npos) << err;
}

TEST(NpipeExe, ServeTakesOneClientAndASecondTimesOut) {
    auto name = unique_pipe_name("cli-one");
    npipe_run serve({"serve", name});
    npipe::named_pipe_client first(name);
    first.connect(20s);
    npipe_run second({"connect", name, "--timeout", "500ms"});
    EXPECT_EQ(second.proc.wait(30s), 1ul) << "a second client was served";
    EXPECT_NE(second.err.content().find(name), std::string::npos) << second.err.content();
    first.write("to the one client");
    first.close();
    EXPECT_EQ(serve.proc.wait(30s), 0ul) << serve.err.content();
    EXPECT_EQ(serve.out.content(), "to the one client");
}

TEST(NpipeExe, IdleTimeoutClosesAQuietClient) {
    auto name = unique_pipe_name("cli-idle");
    npipe_run serve({"serve", name, "--idle-timeout", "300ms"});
    npipe::named_pipe_client client(name);
    client.connect(20s);
    std::byte b[16];
    EXPECT_EQ(client.read(b), 0u);  // the server closed: end of stream
    EXPECT_EQ(serve.proc.wait(30s), 1ul);
    EXPECT_NE(serve.err.content().find("idle timeout"), std::string::npos) << serve.err.content();
}

TEST(NpipeExe, WriteTimeoutClosesAClientThatReadsNothing) {
    auto name = unique_pipe_name("cli-write");
    npipe_run serve({"serve", name, "--write-timeout", "300ms"}, pattern(8 * mib, 1));
    npipe::named_pipe_client client(name);
    client.connect(20s);
    EXPECT_EQ(serve.proc.wait(30s), 1ul);
    EXPECT_NE(serve.err.content().find("write timeout"), std::string::npos) << serve.err.content();
}

TEST(NpipeExe, DemoServerAndClientExchangeTheSeedBytes) {
    auto name = unique_pipe_name("cli-demo");
    npipe_run server({"demo", "server", name});
    npipe_run client({"demo", "client", name, "--timeout", "20s"});
    EXPECT_EQ(client.proc.wait(30s), 0ul) << client.err.content();
    EXPECT_EQ(server.proc.wait(30s), 0ul) << server.err.content();
    EXPECT_EQ(client.out.content(), "1\n");
    EXPECT_EQ(server.out.content(), "2\n");
}

TEST(NpipeExe, ChatKeepsMessageBoundariesWithAPlainWin32Server) {
    auto name = unique_pipe_name("cli-chat");
    peer_process peer({"chat-server", name}, "win32_peer.exe");
    wait_for_server(name);
    // stdin stays open (we hold its writer): the chat ends by the server's message "x".
    HANDLE read_end = nullptr, write_end = nullptr;
    ASSERT_TRUE(::CreatePipe(&read_end, &write_end, nullptr, 0));
    auto close_handle = [](HANDLE h) { ::CloseHandle(h); };
    std::unique_ptr<void, decltype(close_handle)> reader(read_end, close_handle),
        writer(write_end, close_handle);
    DWORD n = 0;
    ASSERT_TRUE(::WriteFile(write_end, "hello from npipe\n", 17, &n, nullptr));
    temp_file out, err;
    npipe::process_options o;
    o.stdin_fd = read_end;
    o.stdout_fd = out.open_write();
    o.stderr_fd = err.open_write();
    peer_process chat({"chat", "client", name, "--timeout", "20s"}, "npipe.exe", o);
    out.close();
    err.close();
    reader.reset();
    EXPECT_EQ(peer.wait(60s), 0ul) << "the Win32 server got another message (3) or failed";
    EXPECT_EQ(chat.wait(60s), 0ul) << err.content();
    // Each message whole on its line, though chat reads them 5 bytes at a time.
    EXPECT_EQ(out.content(), "a message longer than five bytes\nsecond\nx\n");
}

// A client of `name`'s message pipe, in message read mode, connected.
std::unique_ptr<npipe::named_pipe_client> message_client(const std::string& name) {
    auto client = std::make_unique<npipe::named_pipe_client>(name);
    client->connect(20s);
    client->set_read_mode(npipe::transmission_mode::message);
    return client;
}

// Reads one whole message, in pieces of at most 1000 bytes (so a long one takes partial reads).
std::string read_message(npipe::pipe_stream& pipe) {
    std::string message;
    std::byte piece[1000];
    do {
        std::size_t n = pipe.read(piece);
        message.append(reinterpret_cast<const char*>(piece), n);
    } while (!pipe.is_message_complete());
    return message;
}

TEST(NpipeExeEcho, EchoesFiftyConcurrentClientsOnOneThreadIntact) {
    auto name = unique_pipe_name("cli-echo");
    npipe_run serve({"serve", name, "--echo"});
    wait_for_server(name);
    // Every client connected before any sends: the server holds all 50 at once.
    constexpr int clients = 50;
    std::vector<std::unique_ptr<npipe::named_pipe_client>> pipes;
    for (int i = 0; i < clients; ++i) {
        pipes.push_back(std::make_unique<npipe::named_pipe_client>(name));
        pipes.back()->connect(20s);
    }
    std::vector<std::string> results(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
        threads.emplace_back([&, i] {
            // Rounds of 1 KiB: a round's echo fits the pipe's buffers whatever the server's
            // pace, so no write waits on a read that comes after it.
            for (int round = 0; round < 16; ++round) {
                auto chunk = pattern(1024, i * 16 + round);
                pipes[i]->write(npipe::test::pipe_io::bytes(chunk));
                results[i] += npipe::test::pipe_io::read_n(*pipes[i], chunk.size());
            }
        });
    for (auto& t : threads)
        t.join();
    for (int i = 0; i < clients; ++i) {
        std::string expected;
        for (int round = 0; round < 16; ++round)
            expected += pattern(1024, i * 16 + round);
        EXPECT_TRUE(results[i] == expected) << "client " << i << " got another echo";
    }
    pipes.clear();
    EXPECT_FALSE(serve.proc.wait(0ms).has_value())
        << "the echo server ended: " << serve.err.content();
}

TEST(NpipeExeEcho, MessageEchoKeepsEveryBoundary) {
    auto name = unique_pipe_name("cli-echo-msg");
    npipe_run serve({"serve", name, "--echo", "--message"});
    wait_for_server(name);
    auto a = message_client(name), b = message_client(name);
    const std::vector<std::string> messages = {"one", pattern(5000, 1), "", "x", pattern(70000, 2)};
    // Two clients taking turns; each echo is read in pieces of 1000 bytes and must end where
    // its message ended (an empty one too; 70000 bytes span several of the pipe's buffers).
    for (const auto& m : messages) {
        a->write(npipe::test::pipe_io::bytes(m));
        EXPECT_EQ(read_message(*a), m);
        b->write(npipe::test::pipe_io::bytes(m + "b"));
        EXPECT_EQ(read_message(*b), m + "b");
    }
    EXPECT_FALSE(serve.proc.wait(0ms).has_value())
        << "the echo server ended: " << serve.err.content();
}

// As on Linux, --max-instances is the number of clients served at once, and a later client is
// served once an earlier one leaves; as on Windows, that later client waits in its connect.
TEST(NpipeExeEcho, MaxInstancesServesALaterClientOnlyWhenOneLeaves) {
    auto name = unique_pipe_name("cli-echo-max");
    npipe_run serve({"serve", name, "--echo", "--max-instances", "2"});
    wait_for_server(name);
    npipe::named_pipe_client first(name), second(name), third(name);
    first.connect(20s);
    second.connect(20s);
    first.write(npipe::test::pipe_io::bytes("ping"));
    EXPECT_EQ(npipe::test::pipe_io::read_n(first, 4), "ping");
    // The pipe's instances are created with --max-instances as nMaxInstances: Windows itself
    // keeps a third client out (ERROR_PIPE_BUSY) and it waits in its connect.
    std::error_code busy;
    try {
        third.connect(300ms);
    } catch (const npipe::pipe_error& e) {
        busy = e.code();
    }
    EXPECT_EQ(busy, npipe::errc::timed_out) << "a third client got in with --max-instances 2";
    second.write(npipe::test::pipe_io::bytes("still"));
    EXPECT_EQ(npipe::test::pipe_io::read_n(second, 5), "still");
    first.close();  // its instance serves the third client
    third.connect(20s);
    third.write(npipe::test::pipe_io::bytes("pong"));
    EXPECT_EQ(npipe::test::pipe_io::read_n(third, 4), "pong");
}

TEST(NpipeExeEcho, IdleTimeoutDropsAQuietClientAndServesTheOthers) {
    auto name = unique_pipe_name("cli-echo-idle");
    npipe_run serve({"serve", name, "--echo", "--idle-timeout", "300ms"});
    wait_for_server(name);
    npipe::named_pipe_client quiet(name);
    quiet.connect(20s);
    std::byte b[16];
    EXPECT_EQ(quiet.read(b), 0u);  // dropped: the end of the stream
    npipe::named_pipe_client talker(name);
    talker.connect(20s);
    talker.write(npipe::test::pipe_io::bytes("hi"));
    EXPECT_EQ(npipe::test::pipe_io::read_n(talker, 2), "hi");
    EXPECT_FALSE(serve.proc.wait(0ms).has_value())
        << "the echo server ended: " << serve.err.content();
}

// Ctrl+Break (SIGBREAK in the C runtime) stops the echo server with status 0, as SIGINT and
// SIGTERM do on Linux. npipe.exe runs in a process group of its own, which gets the event alone.
TEST(NpipeExeEcho, CtrlBreakStopsTheEchoServerWithStatusZero) {
    auto name = unique_pipe_name("cli-echo-break");
    console_group_process serve("\"" + program_path("npipe.exe") + "\" serve " + name + " --echo");
    wait_for_server(name);
    auto code = serve.ctrl_break_and_wait(30s);
    if (IsSkipped())
        return;
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0ul);
}

TEST(NpipeExeEcho, MaxInstancesWithoutEchoAndOnceAreRefused) {
    npipe_run plain({"serve", "x", "--max-instances", "2"});
    EXPECT_EQ(plain.proc.wait(30s), 2ul);
    EXPECT_NE(plain.err.content().find("--echo"), std::string::npos) << plain.err.content();
    npipe_run once({"serve", "x", "--echo", "--once"});
    EXPECT_EQ(once.proc.wait(30s), 2ul);
    npipe_run bad({"serve", "x", "--echo", "--max-instances", "0"});
    EXPECT_EQ(bad.proc.wait(30s), 2ul);
}

TEST(NpipeExe, ListShowsALiveServer) {
    NPIPE_SKIP_ON_WINE("FindFirstFileW cannot list \\\\.\\pipe\\ (bad device type)");
    auto name = unique_pipe_name("cli-list");
    npipe::named_pipe_server server(name);
    npipe_run list({"list"});
    EXPECT_EQ(list.proc.wait(30s), 0ul) << list.err.content();
    EXPECT_NE(list.out.content().find(name), std::string::npos) << list.out.content();
}

TEST(NpipeExe, WhatWindowsLacksIsRefusedAndNamedInHelp) {
    npipe_run help({"--help"});
    EXPECT_EQ(help.proc.wait(30s), 0ul);
    EXPECT_NE(help.out.content().find("on Windows (npipe.exe): "), std::string::npos)
        << help.out.content();
    EXPECT_EQ(help.out.content().find("`serve --echo`"), std::string::npos)
        << "--help still lists serve --echo as missing on Windows";
    EXPECT_EQ(help.out.content().find("`serve -- CMD`"), std::string::npos)
        << "--help still lists serve -- CMD as missing on Windows";
    npipe_run anon({"anon", "cmd.exe"});
    EXPECT_EQ(anon.proc.wait(30s), 2ul);  // no such subcommand here
}

}  // namespace
