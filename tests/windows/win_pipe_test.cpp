// Windows named pipes through npipe's public API: what only Windows has (\\.\pipe\ names,
// native message pipes as .NET and Win32 peers see them, security descriptors, no name
// takeover) and the transfers between processes. The portable behaviour tests
// (tests/sync/message_mode_test.cpp) run on Windows too. Under Wine, a behaviour Wine lacks is
// skipped with its reason (NPIPE_SKIP_ON_WINE).
#include <windows.h>

#include <atomic>
#include <cstring>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "npipe/npipe.hpp"
#include "npipe/windows.hpp"
#include "support/test_support.hpp"
#include "win_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using npipe::errc;
using npipe::named_pipe_client;
using npipe::named_pipe_server;
using npipe::pipe_direction;
using npipe::pipe_options;
using npipe::transmission_mode;
using npipe::test::error_of;
using npipe::test::pattern;
using npipe::test::unique_pipe_name;
using npipe::test::pipe_io::bytes;
using npipe::test::pipe_io::read_n;
using npipe::test::windows::peer_process;

constexpr std::size_t mib = std::size_t{1} << 20;

// Sends `out` and receives as many bytes at once (a thread writes), as both ends of a copy
// both ways do; whether what came in is `expected`.
bool exchange(npipe::pipe_stream& pipe, const std::string& out, const std::string& expected) {
    auto writer = std::async(std::launch::async, [&] { pipe.write(bytes(out)); });
    auto in = read_n(pipe, expected.size());
    writer.get();
    return in == expected;
}

// The peer roles this program plays when a test starts it again (main() below).
int run_peer(int argc, char** argv) {
    std::string role = argv[1];
    try {
        if (role == "--peer-copy" && argc == 4) {
            // The client end of a copy both ways: sends seed 2, expects seed 1.
            auto size = std::stoull(argv[3]);
            named_pipe_client client(argv[2]);
            client.connect(30s);
            return exchange(client, pattern(size, 2), pattern(size, 1)) ? 0 : 2;
        }
        if (role == "--peer-anon-read" && argc == 4) {
            // Reads the anonymous pipe to its end: exit 0 when it held pattern(size, 3).
            npipe::anonymous_pipe_client pipe(pipe_direction::in, argv[2]);
            return npipe::test::pipe_io::read_to_end(pipe) == pattern(std::stoull(argv[3]), 3) ? 0
                                                                                               : 2;
        }
        if (role == "--peer-anon-write" && argc == 3) {
            npipe::anonymous_pipe_client pipe(pipe_direction::out, argv[2]);
            pipe.write("from the child");
            return 0;
        }
        if (role == "--peer-anon-leak" && argc == 4) {
            // Exit 7 when the handle we were not given is a pipe here: it leaked into us.
            npipe::anonymous_pipe_client mine(pipe_direction::in, argv[2]);
            auto other = reinterpret_cast<HANDLE>(std::stoull(argv[3]));
            DWORD flags = 0;
            return ::GetHandleInformation(other, &flags) && ::GetFileType(other) == FILE_TYPE_PIPE
                       ? 7
                       : 0;
        }
        if (role == "--peer-exit" && argc == 3)
            return std::stoi(argv[2]);
        if (role == "--peer-sleep") {
            ::Sleep(60000);
            return 0;
        }
        if (role == "--peer-serve" && argc == 3) {
            pipe_options options;
            options.first_pipe_instance = false;
            named_pipe_server server(argv[2], pipe_direction::in_out, 4, options);
            return 0;
        }
    } catch (const npipe::pipe_error& e) {
        std::fprintf(stderr, "peer: %s\n", e.what());
        return e.code() == errc::name_in_use ? 3 : 4;
    }
    return 5;
}

// --- Names ---------------------------------------------------------------------------------

TEST(WinPipe, NamesMapToThePipeNamespaceAsInDotNet) {
    EXPECT_EQ(npipe::pipe_path("abc"), R"(\\.\pipe\abc)");
    EXPECT_EQ(npipe::pipe_path(R"(dir\sub)"), R"(\\.\pipe\dir\sub)");
    EXPECT_EQ(error_of([] { npipe::pipe_path(""); }), errc::invalid_name);
    EXPECT_EQ(error_of([] { npipe::pipe_path("Anonymous"); }), errc::invalid_name);
    EXPECT_EQ(error_of([] { npipe::pipe_path(std::string(300, 'x')); }), errc::path_too_long);
}

TEST(WinPipe, ListPipesShowsALiveServer) {
    auto name = unique_pipe_name("list");
    named_pipe_server server(name);
    std::vector<npipe::pipe_info> pipes;
    try {
        pipes = npipe::list_pipes();
    } catch (const npipe::pipe_error& e) {
        NPIPE_SKIP_ON_WINE("listing \\\\.\\pipe\\ (FindFirstFileW fails: " + std::string(e.what()) +
                           ")");
        throw;
    }
    bool found = false;
    for (auto& p : pipes)
        found = found || (p.name == name && p.path == npipe::pipe_path(name) && p.live);
    if (!found)
        NPIPE_SKIP_ON_WINE("listing \\\\.\\pipe\\ (FindFirstFileW on the pipe namespace)");
    EXPECT_TRUE(found);
}

// --- Byte pipes ----------------------------------------------------------------------------

TEST(WinPipe, ByteExchangeAndEndOfStream) {
    auto name = unique_pipe_name("bytes");
    named_pipe_server server(name);
    named_pipe_client client(".", name);
    client.connect(5s);
    server.wait_for_connection(5s);
    EXPECT_EQ(client.transmission_mode(), transmission_mode::byte);
    client.write("hello");
    EXPECT_EQ(read_n(server, 5), "hello");
    server.write("world!");
    EXPECT_EQ(read_n(client, 6), "world!");
    server.write("last words");
    server.close();
    EXPECT_EQ(read_n(client, 100), "last words");  // sent before the close: arrives in full
    std::byte b[1];
    EXPECT_EQ(client.read(b), 0u);
    EXPECT_EQ(client.read_byte(), -1);
    EXPECT_EQ(error_of([&] {
                  for (int i = 0; i < 100; ++i)
                      client.write("x");
              }),
              errc::broken_pipe);
}

TEST(WinPipe, FiftyMiBBothWaysBetweenTwoProcessesIntact) {
    auto name = unique_pipe_name("copy");
    const std::size_t size = 50 * mib;
    named_pipe_server server(name);
    peer_process peer({"--peer-copy", name, std::to_string(size)});
    server.wait_for_connection(30s);
    EXPECT_TRUE(exchange(server, pattern(size, 1), pattern(size, 2)));
    EXPECT_EQ(peer.wait(60s), 0ul) << "the peer received something else (exit 2) or failed";
}

// --- Native message pipes ------------------------------------------------------------------

TEST(WinPipe, MessagesAreNativeWindowsMessagesOnTheWire) {
    // A plain Win32 client, not npipe: it must see each write as one message of its payload,
    // with ERROR_MORE_DATA for a partial read, as a .NET peer on Windows does.
    auto name = unique_pipe_name("wire");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    auto path = npipe::pipe_path(name);
    std::wstring wpath(path.begin(), path.end());
    HANDLE h = ::CreateFileW(wpath.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                             0, nullptr);
    ASSERT_NE(h, INVALID_HANDLE_VALUE) << ::GetLastError();
    DWORD mode = PIPE_READMODE_MESSAGE;
    ASSERT_TRUE(::SetNamedPipeHandleState(h, &mode, nullptr, nullptr));
    server.wait_for_connection(5s);
    server.write("first message");
    server.write("");
    server.write("third");
    char buffer[64];
    DWORD n = 0;
    EXPECT_FALSE(::ReadFile(h, buffer, 5, &n, nullptr));
    EXPECT_EQ(::GetLastError(), static_cast<DWORD>(ERROR_MORE_DATA));
    EXPECT_EQ(std::string(buffer, n), "first");
    ASSERT_TRUE(::ReadFile(h, buffer, sizeof buffer, &n, nullptr));
    EXPECT_EQ(std::string(buffer, n), " message");
    ASSERT_TRUE(::ReadFile(h, buffer, sizeof buffer, &n, nullptr));
    EXPECT_EQ(n, 0u);  // the empty message
    ASSERT_TRUE(::ReadFile(h, buffer, sizeof buffer, &n, nullptr));
    EXPECT_EQ(std::string(buffer, n), "third");
    // And the other way: two Win32 messages are two npipe messages.
    ASSERT_TRUE(::WriteFile(h, "ping", 4, &n, nullptr));
    ASSERT_TRUE(::WriteFile(h, "pong!", 5, &n, nullptr));
    std::string got(16, '\0');
    auto k = server.read(std::as_writable_bytes(std::span(got.data(), 3)));
    EXPECT_EQ(got.substr(0, k), "pin");
    EXPECT_FALSE(server.is_message_complete());
    k = server.read(std::as_writable_bytes(std::span(got.data(), got.size())));
    EXPECT_EQ(got.substr(0, k), "g");
    EXPECT_TRUE(server.is_message_complete());
    k = server.read(std::as_writable_bytes(std::span(got.data(), got.size())));
    EXPECT_EQ(got.substr(0, k), "pong!");
    EXPECT_TRUE(server.is_message_complete());
    ::CloseHandle(h);
}

TEST(WinPipe, LargeMessagesCrossAsOneNativeMessage) {
    auto name = unique_pipe_name("large");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    named_pipe_client client(".", name);
    client.connect(5s);
    server.wait_for_connection(5s);
    ASSERT_EQ(client.transmission_mode(), transmission_mode::message);
    client.set_read_mode(transmission_mode::message);
    auto big = pattern(3 * mib + 17, 7);
    auto writer = std::async(std::launch::async, [&] {
        server.write(bytes(big));
        server.write("after");
    });
    std::string got(big.size(), '\0');
    std::size_t filled = 0;
    do {
        filled += client.read(
            std::as_writable_bytes(std::span(got.data() + filled, got.size() - filled)));
    } while (!client.is_message_complete() && filled < got.size());
    EXPECT_TRUE(client.is_message_complete());
    EXPECT_TRUE(got == big);
    EXPECT_EQ(read_n(client, 5), "after");
    writer.get();
}

TEST(WinPipe, APlainWin32ClientTalksToAnNpipeServer) {
    auto name = unique_pipe_name("win32-client");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    peer_process peer({"client", name}, "win32_peer.exe");
    server.wait_for_connection(30s);
    std::string got(16, '\0');
    auto n = server.read(std::as_writable_bytes(std::span(got.data(), got.size())));
    EXPECT_EQ(got.substr(0, n), "ping");
    EXPECT_TRUE(server.is_message_complete());
    server.write("pong");
    EXPECT_EQ(peer.wait(30s), 0ul);
}

TEST(WinPipe, AnNpipeClientTalksToAPlainWin32Server) {
    auto name = unique_pipe_name("win32-server");
    peer_process peer({"server", name}, "win32_peer.exe");
    named_pipe_client client(".", name);
    client.connect(30s);
    EXPECT_EQ(client.transmission_mode(), transmission_mode::message);
    client.set_read_mode(transmission_mode::message);
    client.write("ping");
    std::string got(16, '\0');
    auto n = client.read(std::as_writable_bytes(std::span(got.data(), got.size())));
    EXPECT_EQ(got.substr(0, n), "pong");
    EXPECT_TRUE(client.is_message_complete());
    EXPECT_EQ(peer.wait(30s), 0ul);
}

// --- Anonymous pipes and child processes ---------------------------------------------------

TEST(WinAnonymousPipe, ReachesAChildInBothDirections) {
    const std::size_t size = 4 * mib;
    {
        npipe::anonymous_pipe_server server(pipe_direction::out);
        auto handle = server.get_client_handle_as_string();
        EXPECT_EQ(handle, std::to_string(reinterpret_cast<std::uintptr_t>(server.client_handle())));
        npipe::process_options options;
        options.inherit_fds = {server.client_handle()};
        peer_process child({"--peer-anon-read", handle, std::to_string(size)}, {}, options);
        server.dispose_local_copy_of_client_handle();
        server.write(bytes(pattern(size, 3)));
        server.close();  // the child reads the end of the stream
        EXPECT_EQ(child.wait(60s), 0ul);
    }
    {
        npipe::anonymous_pipe_server server(pipe_direction::in);
        npipe::process_options options;
        options.inherit_fds = {server.client_handle()};
        peer_process child({"--peer-anon-write", server.get_client_handle_as_string()}, {},
                           options);
        server.dispose_local_copy_of_client_handle();
        EXPECT_EQ(npipe::test::pipe_io::read_to_end(server), "from the child");
        EXPECT_EQ(child.wait(60s), 0ul);
    }
}

TEST(WinAnonymousPipe, AClientInThisProcessTakesTheHandleOver) {
    npipe::anonymous_pipe_server server(pipe_direction::out);
    npipe::anonymous_pipe_client client(pipe_direction::in, server.get_client_handle_as_string());
    EXPECT_EQ(server.client_handle(), nullptr);  // handed over, never closed twice
    server.write("hi");
    server.close();
    EXPECT_EQ(npipe::test::pipe_io::read_to_end(client), "hi");
    EXPECT_EQ(error_of([] { npipe::anonymous_pipe_client bad(pipe_direction::in, "12x"); }),
              errc::invalid_argument);
    EXPECT_EQ(error_of([] { npipe::anonymous_pipe_server both(pipe_direction::in_out); }),
              errc::not_supported);
}

TEST(WinAnonymousPipe, AChildInheritsOnlyTheHandlesItIsGiven) {
    npipe::anonymous_pipe_server given(pipe_direction::out);
    // Inheritable, but not in the child's list: PROC_THREAD_ATTRIBUTE_HANDLE_LIST keeps it out.
    npipe::anonymous_pipe_server other(pipe_direction::out,
                                       npipe::handle_inheritability::inheritable);
    npipe::process_options options;
    options.inherit_fds = {given.client_handle()};
    peer_process child({"--peer-anon-leak", given.get_client_handle_as_string(),
                        other.get_client_handle_as_string()},
                       {}, options);
    auto code = child.wait(60s);
    ASSERT_TRUE(code.has_value());
    if (*code == 7)
        NPIPE_SKIP_ON_WINE(
            "PROC_THREAD_ATTRIBUTE_HANDLE_LIST is ignored: a child inherits every "
            "inheritable handle");
    EXPECT_EQ(*code, 0ul) << "exit 7: a handle not in the list leaked into the child";
}

TEST(WinProcess, ExitCodesAndTermination) {
    {
        peer_process child({"--peer-exit", "42"});
        EXPECT_EQ(child.wait(60s), 42ul);
    }
    auto sleeper = npipe::spawn({npipe::test::windows::program_path(), "--peer-sleep"});
    EXPECT_FALSE(sleeper.try_wait().has_value());
    sleeper.kill(9);
    auto status = sleeper.wait_for(30s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code, 128 + 9);
    EXPECT_THROW(npipe::spawn({"npipe-no-such-program.exe"}), npipe::pipe_error);
}

TEST(WinPipe, ABusyPipeIsWaitedForUntilItsInstanceIsFree) {
    // A Win32 server with a single instance: while the first client holds it, a second finds
    // the pipe busy (ERROR_PIPE_BUSY), times out, then connects once the first is done.
    auto name = unique_pipe_name("busy");
    peer_process peer({"server2", name}, "win32_peer.exe");
    auto ping = [](named_pipe_client& c) {
        c.set_read_mode(transmission_mode::message);
        c.write("ping");
        std::string got(16, '\0');
        return got.substr(0, c.read(std::as_writable_bytes(std::span(got.data(), got.size()))));
    };
    named_pipe_client first(".", name), second(".", name);
    first.connect(30s);
    EXPECT_EQ(error_of([&] { second.connect(300ms); }), errc::timed_out);
    auto connecting = std::async(std::launch::async, [&] { second.connect(30s); });
    EXPECT_EQ(ping(first), "pong");
    connecting.get();
    EXPECT_EQ(ping(second), "pong");
    EXPECT_EQ(peer.wait(30s), 0ul);
}

// --- Instances, names, timeouts ------------------------------------------------------------

TEST(WinPipe, MaxInstancesAndFirstPipeInstanceInOneProcess) {
    auto name = unique_pipe_name("instances");
    named_pipe_server a(name, pipe_direction::in_out, 2);
    named_pipe_server b(name, pipe_direction::in_out, 2);
    EXPECT_EQ(error_of([&] { named_pipe_server c(name, pipe_direction::in_out, 2); }),
              errc::all_instances_busy);
    pipe_options first;
    first.first_pipe_instance = true;
    EXPECT_EQ(error_of([&] { named_pipe_server d(name, pipe_direction::in_out, 2, first); }),
              errc::name_in_use);
    // Both instances serve a client each.
    named_pipe_client c1(".", name), c2(".", name);
    c1.connect(5s);
    c2.connect(5s);
    a.wait_for_connection(5s);
    b.wait_for_connection(5s);
    c1.write("1");
    c2.write("2");
    EXPECT_EQ(read_n(a, 1) + read_n(b, 1), "12");
}

TEST(WinPipe, AnotherProcessCannotJoinOrTakeALiveServersName) {
    auto name = unique_pipe_name("hijack");
    named_pipe_server server(name);
    peer_process peer({"--peer-serve", name});
    auto code = peer.wait(30s);
    ASSERT_TRUE(code.has_value());
    if (*code == 0)
        NPIPE_SKIP_ON_WINE(
            "FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced: another process "
            "created an instance of a live server's name");
    EXPECT_EQ(*code, 3ul) << "the other process's server should fail with name_in_use";
}

TEST(WinPipe, ConnectTimesOutWithoutAServer) {
    named_pipe_client client(".", unique_pipe_name("nobody"));
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(error_of([&] { client.connect(300ms); }), errc::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
}

TEST(WinPipe, ConnectReturnsWhenTheServerAppears) {
    auto name = unique_pipe_name("late");
    named_pipe_client client(".", name);
    auto connecting = std::async(std::launch::async, [&] { client.connect(20s); });
    std::this_thread::sleep_for(100ms);  // the client most likely waits by now (see below)
    named_pipe_server server(name);
    server.wait_for_connection(20s);
    connecting.get();
    EXPECT_TRUE(client.is_connected());
}

TEST(WinPipe, WaitForConnectionTimesOut) {
    named_pipe_server server(unique_pipe_name("lonely"));
    EXPECT_EQ(error_of([&] { server.wait_for_connection(200ms); }), errc::timed_out);
}

TEST(WinPipe, DisconnectThenServeTheNextClient) {
    auto name = unique_pipe_name("next");
    named_pipe_server server(name);
    for (int i = 0; i < 3; ++i) {
        named_pipe_client client(".", name);
        client.connect(5s);
        server.wait_for_connection(5s);
        client.write(std::to_string(i));
        EXPECT_EQ(read_n(server, 1), std::to_string(i));
        server.disconnect();
        std::byte b[1];
        EXPECT_EQ(client.read(b), 0u);
    }
}

// --- close() from another thread -----------------------------------------------------------
// The pauses below make it likely that the other thread is blocked when close() comes; the
// Linux tests see that in /proc, but Wine reports no thread states (NtQuerySystemInformation
// gives every thread state 0). Either order must give the same result, so no pause can make a
// test pass that should fail: at worst a run checks the close-before-wait path instead.

TEST(WinPipe, CloseFromAnotherThreadWakesWaitForConnection) {
    named_pipe_server server(unique_pipe_name("wake-wait"));
    auto waiting = std::async(std::launch::async,
                              [&] { return error_of([&] { server.wait_for_connection(); }); });
    std::this_thread::sleep_for(50ms);
    server.close();
    ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(waiting.get(), errc::operation_aborted);
}

TEST(WinPipe, CloseFromAnotherThreadWakesConnect) {
    named_pipe_client client(".", unique_pipe_name("wake-connect"));
    auto connecting =
        std::async(std::launch::async, [&] { return error_of([&] { client.connect(); }); });
    std::this_thread::sleep_for(50ms);
    client.close();
    ASSERT_EQ(connecting.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(connecting.get(), errc::operation_aborted);
}

TEST(WinPipe, CloseFromAnotherThreadWakesABlockedReadAndThePeerSeesTheEnd) {
    for (auto mode : {transmission_mode::byte, transmission_mode::message}) {
        auto name = unique_pipe_name("wake-read");
        named_pipe_server server(name, pipe_direction::in_out, 1, mode);
        named_pipe_client client(".", name);
        client.connect(5s);
        server.wait_for_connection(5s);
        auto reading = std::async(std::launch::async, [&] {
            std::byte b[16];
            std::error_code ec;
            return server.read(b, ec);
        });
        std::this_thread::sleep_for(50ms);
        server.close();
        ASSERT_EQ(reading.wait_for(10s), std::future_status::ready);
        EXPECT_EQ(reading.get(), 0u);
        std::byte b[1];
        EXPECT_EQ(client.read(b), 0u) << "the client should see the end at once";
    }
}

// --- Security and credentials --------------------------------------------------------------

TEST(WinPipe, PeerCredentialsNameTheOtherProcessAndUser) {
    auto name = unique_pipe_name("creds");
    named_pipe_server server(name);
    named_pipe_client client(".", name);
    client.connect(5s);
    server.wait_for_connection(5s);
    EXPECT_EQ(server.get_peer_credentials().pid,
              static_cast<npipe::process_id>(::GetCurrentProcessId()));
    EXPECT_EQ(client.get_peer_credentials().pid,
              static_cast<npipe::process_id>(::GetCurrentProcessId()));
    wchar_t user[256];
    DWORD size = 256;
    ASSERT_TRUE(::GetUserNameW(user, &size));
    std::wstring expected(user, size - 1);
    EXPECT_EQ(server.get_impersonation_user_name(), std::string(expected.begin(), expected.end()));
    auto sid = npipe::windows::sid_string(server.get_peer_credentials().uid);
    EXPECT_EQ(sid.rfind("S-1-", 0), 0u) << sid;
    EXPECT_EQ(sid, npipe::windows::sid_string(client.get_peer_credentials().uid));
}

TEST(WinPipe, CurrentUserOnlyAdmitsTheSameUserBothWays) {
    auto name = unique_pipe_name("mine");
    pipe_options options;
    options.current_user_only = true;
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    named_pipe_client client(".", name, pipe_direction::in_out, options);
    client.connect(5s);
    server.wait_for_connection(5s);
    client.write("ok");
    EXPECT_EQ(read_n(server, 2), "ok");
}

TEST(WinPipe, AcceptPeerRefusesAClientBeforeAByteMoves) {
    auto name = unique_pipe_name("refuse");
    pipe_options options;
    std::atomic<int> asked{0};
    options.accept_peer = [&](const npipe::peer_credentials&) { return ++asked > 1; };
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    named_pipe_client refused(".", name), admitted(".", name);
    refused.connect(5s);
    admitted.connect(5s);
    server.wait_for_connection(5s);
    EXPECT_EQ(asked, 2);
    std::byte b[1];
    EXPECT_EQ(refused.read(b), 0u);
    admitted.write("y");
    EXPECT_EQ(read_n(server, 1), "y");
}

TEST(WinPipe, PosixOnlyOptionsAreRefusedClearly) {
    pipe_options options;
    options.socket_mode = 0660;
    try {
        named_pipe_server server(unique_pipe_name("posix"), pipe_direction::in_out, 1, options);
        FAIL() << "socket_mode was accepted";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::not_supported);
        EXPECT_NE(std::string(e.what()).find("POSIX-only"), std::string::npos) << e.what();
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strncmp(argv[1], "--peer-", 7) == 0)
        return run_peer(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
