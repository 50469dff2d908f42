// Other users and other network namespaces, through the CLI: a link another user owns on the
// path is refused wherever it stands, and a live server in another network namespace keeps its
// name and looks live (#16 items 5 and 6). Needs root (CI runs as root): it acts as uid 65534
// and makes network namespaces with unshare(1).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "support/test_support.hpp"

using namespace npipe::test;
using namespace std::chrono_literals;

namespace {

constexpr uid_t nobody = 65534;
constexpr gid_t nogroup = 65534;

child::options as_nobody() {
    child::options o;
    o.uid = nobody;
    o.gid = nogroup;
    return o;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// The line of `npipe list` that names `name`, or "".
std::string list_line(const std::string& name) {
    auto r = run({cli(), "list"}, "", 30s);
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
        if (line.find(name) != std::string::npos)
            return line;
    return "";
}

}  // namespace

// #16 item 5: in a sticky directory, another user links lnk -> a directory of root's; serving
// at lnk/sock would let them swap the link for a directory of their own later and take the
// clients. The link is refused with the reason; a link of our own in the same place is fine.
TEST(isolation, cli_serve_refuses_a_path_through_another_users_symlink) {
    temp_dir sticky, target;
    ASSERT_EQ(::chmod(sticky.path().c_str(), 01777), 0);
    ASSERT_EQ(::chmod(target.path().c_str(), 0755), 0);
    const std::string theirs = sticky.path() + "/theirs", ours = sticky.path() + "/ours";
    auto made = run({"ln", "-s", target.path(), theirs}, "", 30s, as_nobody());
    ASSERT_EQ(made.exit_code, 0) << made.err;

    auto refused = run({cli(), "serve", theirs + "/sock", "--echo"}, "", 30s);
    EXPECT_EQ(refused.exit_code, 1) << refused.err;
    EXPECT_NE(refused.err.find("symbolic link " + theirs + " on the path belongs to uid 65534"),
              std::string::npos)
        << refused.err;
    EXPECT_FALSE(exists(target.path() + "/sock"));

    // The same link, ours: served.
    ASSERT_EQ(::symlink(target.path().c_str(), ours.c_str()), 0);
    child server({cli(), "serve", ours + "/sock", "--echo"});
    EXPECT_TRUE(wait_for_server(ours + "/sock", 30s)) << server.err();
    server.kill(SIGTERM);
}

// A link of root's that leads through a link of another user's is just as unsafe.
TEST(isolation, cli_serve_refuses_a_chain_of_links_through_another_users_one) {
    temp_dir sticky, target;
    ASSERT_EQ(::chmod(sticky.path().c_str(), 01777), 0);
    const std::string theirs = sticky.path() + "/theirs", ours = sticky.path() + "/ours";
    auto made = run({"ln", "-s", target.path(), theirs}, "", 30s, as_nobody());
    ASSERT_EQ(made.exit_code, 0) << made.err;
    ASSERT_EQ(::symlink(theirs.c_str(), ours.c_str()), 0);
    auto refused = run({cli(), "serve", ours + "/sock", "--echo"}, "", 30s);
    EXPECT_EQ(refused.exit_code, 1) << refused.err;
    EXPECT_NE(refused.err.find("belongs to uid 65534"), std::string::npos) << refused.err;
    EXPECT_FALSE(exists(target.path() + "/sock"));
}

// #16 item 6: `unshare -n npipe serve NAME --echo` shares the socket file but not the network
// namespace, so sock_diag in ours cannot see its listener. It must still look live to `npipe
// list`, keep its name against `npipe serve NAME` here, and keep serving our clients.
TEST(isolation, a_server_in_another_network_namespace_keeps_its_name) {
    tmpdir_scope tmp;  // a private TMPDIR, inherited by every command below
    auto name = unique_pipe_name("netns");
    auto path = tmp.path() + "/CoreFxPipe_" + name;
    child server({"unshare", "-n", cli(), "serve", name, "--echo"});
    // Not wait_for_server: the kernel shows us no listener in another namespace. The file is
    // there once bind() has run; the echo below proves it listens.
    for (auto until = std::chrono::steady_clock::now() + 30s;
         !exists(path) && std::chrono::steady_clock::now() < until;)
        std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(exists(path)) << server.err();
    auto echoed = run({cli(), "connect", name, "--timeout", "10000"}, "ping", 30s);
    ASSERT_EQ(echoed.exit_code, 0) << echoed.err;
    EXPECT_EQ(echoed.out, "ping");

    auto line = list_line(name);
    EXPECT_EQ(line.rfind("live", 0), 0u) << "npipe list: " << line;

    struct stat before {};
    ASSERT_EQ(::lstat(path.c_str(), &before), 0);
    auto second = run({cli(), "serve", name, "--echo"}, "", 30s);
    EXPECT_NE(second.exit_code, 0) << "took the live server's name: " << second.err;
    struct stat after {};
    ASSERT_EQ(::lstat(path.c_str(), &after), 0) << "the live server's socket was removed";
    EXPECT_EQ(after.st_ino, before.st_ino);
    auto again = run({cli(), "connect", name, "--timeout", "10000"}, "pong", 30s);
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out, "pong");

    // Once it has gone, its name is free: the socket it leaves is stale and replaced.
    server.kill(SIGKILL);
    EXPECT_EQ(list_line(name).rfind("stale", 0), 0u) << list_line(name);
    child successor({cli(), "serve", name, "--echo"});
    EXPECT_TRUE(wait_for_server(name, 30s)) << successor.err();
    successor.kill(SIGTERM);
}

// The lock that makes it visible belongs to the socket's owner only: a lock file another user
// plants beside our stale socket neither keeps our name from us nor is used by us.
TEST(isolation, another_users_lock_file_is_refused_with_the_reason) {
    temp_dir sticky;
    ASSERT_EQ(::chmod(sticky.path().c_str(), 01777), 0);
    const std::string path = sticky.path() + "/s.sock";
    auto planted = run({"sh", "-c", "touch '" + path + ".npipe-lock'"}, "", 30s, as_nobody());
    ASSERT_EQ(planted.exit_code, 0) << planted.err;
    auto refused = run({cli(), "serve", path, "--echo"}, "", 30s);
    EXPECT_EQ(refused.exit_code, 1) << refused.err;
    EXPECT_NE(refused.err.find("belongs to uid 65534"), std::string::npos) << refused.err;
    EXPECT_FALSE(exists(path));
}
