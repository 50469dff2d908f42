// Who may connect: socket-file mode and group from creation, accept-time credential checks,
// refusal of paths another user controls, and the client's view of the server (issue 6).
// Tests acting as another user need root (CI runs as root) and use uid/gid 65534 (nobody /
// nogroup) through fork + setuid, or `child::options::uid` for the CLI.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <vector>

#include "npipe/npipe.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using npipe::errc;
using npipe::named_pipe_client;
using npipe::named_pipe_server;
using npipe::pipe_direction;
using npipe::test::unique_pipe_name;
using npipe::test::pipe_io::bytes;
using npipe::test::pipe_io::read_n;

namespace {

constexpr uid_t nobody = 65534;
constexpr gid_t nogroup = 65534;

// Runs fn in a forked child and returns its exit code (fn's return value).
int in_child(const std::function<int()>& fn) {
    pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(fn());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Drops to uid `uid` with primary group `gid` and no supplementary groups.
bool become(uid_t uid, gid_t gid) {
    return ::setgroups(0, nullptr) == 0 && ::setgid(gid) == 0 && ::setuid(uid) == 0;
}

// A client as another user: connects, sends `send`, then reads what the server answers until
// end of stream. Exit code 0 when it got exactly `expect`, 10 when connect was refused with
// access_denied, 11 when it read end of stream without a byte (dropped), others on failure.
int client_as(uid_t uid, gid_t gid, const std::string& name, const std::string& send,
              const std::string& expect) {
    return in_child([&] {
        if (!become(uid, gid))
            return 3;
        try {
            named_pipe_client c(name);
            std::error_code ec;
            c.connect(5s, ec);
            if (ec == errc::access_denied)
                return 10;
            if (ec)
                return 4;
            std::byte b[256];
            if (!send.empty())
                c.write(bytes(send), ec);  // may fail once the server dropped us
            std::string got;
            for (;;) {
                auto n = c.read(b, ec);
                if (ec || n == 0)
                    break;
                got.append(reinterpret_cast<const char*>(b), n);
            }
            if (got.empty() && !expect.empty())
                return 11;
            return got == expect ? 0 : 5;
        } catch (...) {
            return 6;
        }
    });
}

#define REQUIRE_ROOT()                                                             \
    do {                                                                           \
        if (::geteuid() != 0)                                                      \
            GTEST_SKIP() << "needs root to act as another user (CI runs as root)"; \
    } while (0)

struct stat stat_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
}

}  // namespace

// --- Access control -------------------------------------------------------------------------

TEST(security, socket_mode_is_exact_whatever_the_umask) {
    for (mode_t umask_value : {mode_t{0}, mode_t{022}, mode_t{077}}) {
        mode_t old = ::umask(umask_value);
        npipe::pipe_options options;
        options.socket_mode = 0660;
        named_pipe_server server(unique_pipe_name(), pipe_direction::in_out, 1, options);
        ::umask(old);
        EXPECT_EQ(stat_of(server.socket_path()).st_mode & 07777, 0660u) << "umask " << umask_value;
    }
    npipe::pipe_options bad;
    bad.socket_mode = 04755;
    try {
        named_pipe_server s(unique_pipe_name(), pipe_direction::in_out, 1, bad);
        FAIL() << "a set-uid mode was accepted";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::invalid_argument);
    }
}

TEST(security, socket_group_admits_its_members_and_no_one_else) {
    REQUIRE_ROOT();
    auto name = unique_pipe_name();
    npipe::pipe_options options;
    options.socket_mode = 0660;
    options.socket_group = nogroup;
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    auto st = stat_of(server.socket_path());
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    EXPECT_EQ(st.st_gid, nogroup);
    EXPECT_EQ(st.st_uid, 0u);

    // uid nobody in group daemon (1): neither owner nor member, so mode 0660 stops it at connect.
    EXPECT_EQ(client_as(nobody, 1, name, "", "x"), 10);
    EXPECT_FALSE(server.is_connected());

    // uid nobody in group nogroup: a member, served.
    auto served = std::async(std::launch::async, [&] {
        server.wait_for_connection(10s);
        auto got = read_n(server, 5);
        server.write(bytes("ok:" + got));
        server.disconnect();
        return got;
    });
    EXPECT_EQ(client_as(nobody, nogroup, name, "hello", "ok:hello"), 0);
    EXPECT_EQ(served.get(), "hello");
}

TEST(security, socket_group_fails_clearly_when_we_may_not_use_it) {
    REQUIRE_ROOT();
    npipe::test::temp_dir dir;
    ASSERT_EQ(::chown(dir.path().c_str(), nobody, nogroup), 0);  // nobody's own directory
    std::string path = dir.path() + "/grp.sock";
    int code = in_child([&] {
        if (!become(nobody, nogroup))
            return 3;
        npipe::pipe_options options;
        options.socket_group = 0;  // root's group: nobody is not a member
        try {
            named_pipe_server s(path, pipe_direction::in_out, 1, options);
            return 4;
        } catch (const npipe::pipe_error& e) {
            // refused, saying why, and the half-made socket file removed
            struct stat st {};
            bool gone = ::lstat(path.c_str(), &st) != 0;
            if (e.code() != errc::access_denied)
                return 5;
            if (!std::strstr(e.what(), "group 0"))
                return 6;
            return gone ? 0 : 7;
        }
    });
    ::chown(dir.path().c_str(), 0, 0);
    EXPECT_EQ(code, 0);
}

TEST(security, accept_peer_refuses_before_a_byte_and_the_server_goes_on) {
    REQUIRE_ROOT();
    auto name = unique_pipe_name();
    std::mutex m;
    std::vector<npipe::peer_credentials> seen;
    npipe::pipe_options options;
    options.socket_mode = 0666;  // the file lets everyone connect: only the predicate decides
    options.accept_peer = [&](const npipe::peer_credentials& peer) {
        std::lock_guard lock(m);
        seen.push_back(peer);
        return peer.uid == ::geteuid();
    };
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    auto served = std::async(std::launch::async, [&] {
        server.wait_for_connection(20s);
        auto got = read_n(server, 4);
        server.write(bytes("answer"));
        return got;
    });
    // The refused client: its bytes are never read and it gets none (end of stream).
    EXPECT_EQ(client_as(nobody, nogroup, name, "evil", "anything"), 11);
    {
        std::lock_guard lock(m);
        ASSERT_EQ(seen.size(), 1u);
        EXPECT_EQ(seen[0].uid, nobody);
        EXPECT_EQ(seen[0].gid, nogroup);
        EXPECT_GT(seen[0].pid, 0);
    }
    EXPECT_FALSE(server.is_connected());
    // The allowed client, after it: served normally, and the refused one's bytes never arrive.
    named_pipe_client good(name);
    good.connect(5s);
    good.write(bytes("good"));
    EXPECT_EQ(read_n(good, 6), "answer");
    EXPECT_EQ(served.get(), "good");
    std::lock_guard lock(m);
    EXPECT_EQ(seen.size(), 2u);
}

TEST(security, accept_peer_that_throws_refuses) {
    auto name = unique_pipe_name();
    std::atomic<int> calls{0};
    npipe::pipe_options options;
    options.accept_peer = [&](const npipe::peer_credentials&) -> bool {
        if (calls++ == 0)
            throw std::runtime_error("policy store unavailable");
        return true;
    };
    named_pipe_server server(name, pipe_direction::in_out, 1, options);
    named_pipe_client first(name);
    first.connect(5s);
    std::error_code ec;
    server.wait_for_connection(200ms, ec);
    EXPECT_EQ(ec, errc::timed_out);  // the first client was refused, not handed over
    EXPECT_EQ(first.read_byte(), -1);
    named_pipe_client second(name);
    second.connect(5s);
    server.wait_for_connection(5s);
    second.write_byte(42);
    EXPECT_EQ(server.read_byte(), 42);
    EXPECT_EQ(calls.load(), 2);
}

// --- Paths another user controls -----------------------------------------------------------

TEST(security, symlink_at_the_path_is_refused_and_left_alone) {
    npipe::test::temp_dir dir;
    std::string target = dir.path() + "/precious";
    { std::ofstream(target) << "keep me"; }
    std::string path = dir.path() + "/pipe.sock";
    ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
    try {
        named_pipe_server s(path);
        FAIL() << "bound through a planted symlink";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::not_a_socket);
        EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(S_ISLNK(stat_of(path).st_mode));
    std::ifstream in(target);
    std::string content;
    std::getline(in, content);
    EXPECT_EQ(content, "keep me");
    // A dangling link too (the classic trap: bind would create the file where it points).
    std::string dangling = dir.path() + "/dangling.sock";
    std::string where = dir.path() + "/created-by-bind";
    ASSERT_EQ(::symlink(where.c_str(), dangling.c_str()), 0);
    EXPECT_THROW(named_pipe_server s(dangling), npipe::pipe_error);
    struct stat st {};
    EXPECT_NE(::lstat(where.c_str(), &st), 0);
}

TEST(security, another_users_socket_is_refused_and_never_removed) {
    REQUIRE_ROOT();
    auto name = unique_pipe_name();
    std::string path = npipe::pipe_path(name);
    // A stale socket of nobody's: bound by nobody, then its process exits.
    ASSERT_EQ(in_child([&] {
                  if (!become(nobody, nogroup))
                      return 3;
                  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
                  sockaddr_un addr{};
                  addr.sun_family = AF_UNIX;
                  std::strcpy(addr.sun_path, path.c_str());
                  return ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? 0 : 4;
              }),
              0);
    auto before = stat_of(path);
    ASSERT_EQ(before.st_uid, nobody);
    try {
        named_pipe_server s(name);
        FAIL() << "took over another user's socket";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::access_denied);
        EXPECT_NE(std::string(e.what()).find("uid 65534"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("never removes"), std::string::npos) << e.what();
    }
    auto after = stat_of(path);
    EXPECT_EQ(after.st_ino, before.st_ino);
    ::unlink(path.c_str());
    // Our own stale socket is still replaced (the crashed-server case).
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, path.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ::close(fd);
    }
    named_pipe_server mine(name);
    EXPECT_TRUE(npipe::test::wait_for_server(name, 5s));
}

TEST(security, rooted_name_in_an_unsafe_directory_is_refused_with_the_reason) {
    npipe::test::temp_dir dir;
    std::string path = dir.path() + "/pipe.sock";
    ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);  // anyone may rename our socket away
    try {
        named_pipe_server s(path);
        FAIL() << "served from a world-writable, non-sticky directory";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::access_denied);
        EXPECT_NE(std::string(e.what()).find("without the sticky bit"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find(dir.path()), std::string::npos) << e.what();
    }
    ASSERT_EQ(::chmod(dir.path().c_str(), 0770), 0);
    EXPECT_THROW(named_pipe_server s(path), npipe::pipe_error);  // group-writable, same story
    ASSERT_EQ(::chmod(dir.path().c_str(), 01777), 0);            // sticky, like /tmp: fine
    { named_pipe_server s(path); }
    ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
    { named_pipe_server s(path); }

    // A directory on the way that is reached through a link into an unsafe directory.
    npipe::test::temp_dir other;
    ASSERT_EQ(::chmod(other.path().c_str(), 0777), 0);
    std::string link = dir.path() + "/via";
    ASSERT_EQ(::symlink(other.path().c_str(), link.c_str()), 0);
    try {
        named_pipe_server s(link + "/pipe.sock");
        FAIL() << "served from a world-writable directory reached through a link";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::access_denied);
        EXPECT_NE(std::string(e.what()).find(other.path()), std::string::npos) << e.what();
    }
    ASSERT_EQ(::chmod(other.path().c_str(), 0700), 0);

    if (::geteuid() == 0) {
        // A directory of another (non-root) user: its owner could swap the file.
        ASSERT_EQ(::chown(dir.path().c_str(), nobody, nogroup), 0);
        try {
            named_pipe_server s(path);
            FAIL() << "served from another user's directory";
        } catch (const npipe::pipe_error& e) {
            EXPECT_EQ(e.code(), errc::access_denied);
            EXPECT_NE(std::string(e.what()).find("uid 65534"), std::string::npos) << e.what();
        }
        ::chown(dir.path().c_str(), 0, 0);
    }
}

// --- The client's view of the server --------------------------------------------------------

TEST(security, client_reads_server_credentials_before_sending_a_byte) {
    auto name = unique_pipe_name();
    int ready[2], got_byte[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(got_byte), 0);
    pid_t server_pid = ::fork();
    if (server_pid == 0) {
        named_pipe_server s(name);
        [[maybe_unused]] auto w = ::write(ready[1], "r", 1);
        s.wait_for_connection(10s);
        // Reports whether any byte arrived before the client was told to go on.
        std::byte b[1];
        std::error_code ec;
        auto n = s.read(b, ec);
        char report = n == 0 ? 'e' : 'b';
        w = ::write(got_byte[1], &report, 1);
        ::_exit(0);
    }
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    named_pipe_client client(name);
    client.connect(5s);
    auto peer = client.get_peer_credentials();
    EXPECT_EQ(peer.pid, server_pid);
    EXPECT_EQ(peer.uid, ::geteuid());
    EXPECT_EQ(peer.gid, ::getegid());
    client.close();  // decided not to talk: the server saw no byte
    ASSERT_EQ(::read(got_byte[0], &c, 1), 1);
    EXPECT_EQ(c, 'e');
    ::waitpid(server_pid, nullptr, 0);
    for (int fd : {ready[0], ready[1], got_byte[0], got_byte[1]})
        ::close(fd);
}

// --- The CLI ---------------------------------------------------------------------------------

TEST(security, cli_serve_mode_group_and_allow_lists) {
    REQUIRE_ROOT();
    auto name = unique_pipe_name();
    npipe::test::child server({npipe::test::cli(), "serve", name, "--mode", "666", "--group",
                               "nogroup", "--allow-uid", "0", "--allow-gid", "1"});
    ASSERT_TRUE(npipe::test::wait_for_server(name));
    auto st = stat_of(npipe::pipe_path(name));
    EXPECT_EQ(st.st_mode & 07777, 0666u);
    EXPECT_EQ(st.st_gid, nogroup);
    // nobody/nogroup: not allowed by uid or gid: dropped without a byte, logged.
    EXPECT_EQ(client_as(nobody, nogroup, name, "intruder\n", "x"), 11);
    // nobody in group 1: allowed by --allow-gid.
    server.write_stdin("welcome\n");
    server.close_stdin();
    EXPECT_EQ(client_as(nobody, 1, name, "member\n", "welcome\n"), 0);
    ASSERT_EQ(server.wait(10s), 0) << server.err();
    EXPECT_EQ(server.out(), "member\n");
    EXPECT_NE(server.err().find("refused a client (uid 65534, gid 65534"), std::string::npos)
        << server.err();
    struct stat gone {};
    EXPECT_NE(::lstat(npipe::pipe_path(name).c_str(), &gone), 0);
}

TEST(security, cli_serve_reports_an_unsafe_path) {
    npipe::test::temp_dir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
    auto r = npipe::test::run({npipe::test::cli(), "serve", dir.path() + "/s.sock"}, "", 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("without the sticky bit"), std::string::npos) << r.err;
}

// --- Name parsing, fuzzed -------------------------------------------------------------------

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

TEST(security, pipe_name_fuzz_entry_point_on_random_names) {
    // fuzz/pipe_name_fuzz.cpp's checks on names built from the characters that matter.
    const char* old_tmp = std::getenv("TMPDIR");
    std::string saved = old_tmp ? old_tmp : "";
    std::uint32_t x = 2463534242u;
    auto next = [&] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    };
    const char alphabet[] = {'/', '\0', 'a', 'A', 'n', 'o', 'y',
                             'm', 'u',  's', '.', '-', ' ', '\xff'};
    for (int i = 0; i < 20000; ++i) {
        std::string input(1, static_cast<char>(next()));
        std::size_t len = next() % (next() % 4 == 0 ? 140 : 12);
        for (std::size_t k = 0; k < len; ++k)
            input += alphabet[next() % sizeof alphabet];
        if (next() % 8 == 0)
            input = std::string(1, input[0]) + "anonymous";
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    }
    if (old_tmp)
        ::setenv("TMPDIR", saved.c_str(), 1);
    else
        ::unsetenv("TMPDIR");
}
