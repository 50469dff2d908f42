// `npipe anon`: send/recv with npipe and C# (Mono) children, exit statuses, errors, help, and the
// descriptors a CLI child gets.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "support/test_support.hpp"

namespace npipe {
namespace {

using namespace std::chrono_literals;
using test::cli;

constexpr std::size_t fifty_mib = 50u << 20;

// Compares without printing 50 MiB when they differ.
::testing::AssertionResult same_bytes(const std::string& got, const std::string& want) {
    if (got == want)
        return ::testing::AssertionSuccess();
    std::size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i])
        ++i;
    return ::testing::AssertionFailure() << "got " << got.size() << " bytes, want " << want.size()
                                         << "; first difference at " << i;
}

std::size_t line_count(const std::string& text) {
    std::size_t lines = 0;
    for (char c : text)
        lines += c == '\n';
    return lines;
}

std::vector<std::string> npipe_args(std::vector<std::string> args) {
    args.insert(args.begin(), cli());
    return args;
}

TEST(AnonCli, SendMovesFiftyMebibytesToAnNpipeChild) {
    const std::string data = test::pattern(fifty_mib, 11);
    auto r = test::run(npipe_args({"anon", "send", "--", cli(), "anon", "read", "{}"}), data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(same_bytes(r.out, data));
    EXPECT_EQ(r.err, "");
}

TEST(AnonCli, RecvMovesFiftyMebibytesFromAnNpipeChild) {
    const std::string data = test::pattern(fifty_mib, 12);
    auto r = test::run(npipe_args({"anon", "recv", "--", cli(), "anon", "write", "{}"}), data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(same_bytes(r.out, data));
    EXPECT_EQ(r.err, "");
}

TEST(AnonCli, TheDoubleDashIsOptionalAndOptionsAfterCmdAreCmds) {
    auto r = test::run(npipe_args({"anon", "send", cli(), "anon", "read", "{}"}), "no dashes\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "no dashes\n");
    // --help after CMD is CMD's option, not npipe's.
    r = test::run(
        npipe_args({"anon", "recv", "bash", "-c", "echo \"$1\" >&$2", "bash", "--help", "{}"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "--help\n");
}

TEST(AnonCli, BufferSizeOptionIsAccepted) {
    const std::string data = test::pattern(1 << 20, 13);
    auto r = test::run(
        npipe_args({"anon", "send", "--buffer-size", "1048576", "--", cli(), "anon", "read", "{}"}),
        data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(same_bytes(r.out, data));
}

TEST(AnonCli, EveryBraceArgumentAndTheEnvironmentCarryTheHandle) {
    auto r = test::run(npipe_args({"anon", "recv", "--", "bash", "-c",
                                   "printf '%s %s %s' \"$1\" \"$2\" \"$NPIPE_ANON_HANDLE\" >&$1",
                                   "bash", "{}", "{}"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream fields(r.out);
    std::string a, b, c;
    fields >> a >> b >> c;
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a.find_first_not_of("0123456789"), std::string::npos) << a;
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, c);
}

TEST(AnonCli, TheChildsOwnOutputStaysOutOfTheData) {
    // recv: the child's stdout goes to our stderr.
    auto r = test::run(npipe_args(
        {"anon", "recv", "--", "bash", "-c", "echo noise; echo data >&$1", "bash", "{}"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "data\n");
    EXPECT_EQ(r.err, "noise\n");
    // send: the child's stdin is /dev/null, so it cannot take the bytes meant for the pipe.
    r = test::run(npipe_args({"anon", "send", "--", "bash", "-c", "cat; cat <&$1", "bash", "{}"}),
                  "only through the pipe\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "only through the pipe\n");
}

TEST(AnonCli, ExitsWithTheChildsStatus) {
    auto r = test::run(npipe_args({"anon", "send", "--", "sh", "-c", "exit 5"}), "ignored");
    EXPECT_EQ(r.exit_code, 5);
    EXPECT_EQ(r.err, "");  // a child that stops reading is not an npipe error
    r = test::run(npipe_args({"anon", "recv", "--", "sh", "-c", "kill -KILL $$"}));
    EXPECT_EQ(r.exit_code, 128 + SIGKILL);
}

TEST(AnonCli, ACommandThatCannotStartIsOneLineAndAShellsCode) {
    auto r = test::run(npipe_args({"anon", "send", "--", "/nonexistent/npipe-cmd", "{}"}));
    EXPECT_EQ(r.exit_code, 127);
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("/nonexistent/npipe-cmd"), std::string::npos) << r.err;

    test::temp_dir dir;
    std::string script = dir.path() + "/not-executable";
    std::ofstream(script) << "#!/bin/sh\n";
    r = test::run(npipe_args({"anon", "recv", "--", script}));
    EXPECT_EQ(r.exit_code, 126);
    EXPECT_EQ(line_count(r.err), 1u) << r.err;

    r = test::run(npipe_args({"anon", "send"}));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err, "");
}

TEST(AnonCli, BadHandlesAreOneLineErrorsNamingTheHandle) {
    auto r = test::run(npipe_args({"anon", "read", "abc"}));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("'abc'"), std::string::npos) << r.err;

    r = test::run(npipe_args({"anon", "write", "987"}));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("'987'"), std::string::npos) << r.err;

    test::child::options null_stdin;
    null_stdin.capture_stdin = false;  // stdin is /dev/null
    r = test::run(npipe_args({"anon", "read", "0"}), {}, 60s, null_stdin);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("character device"), std::string::npos) << r.err;

    // The child gets the read end of a send pipe but is told to write: its error, its status.
    r = test::run(npipe_args({"anon", "send", "--", cli(), "anon", "write", "{}"}), "x");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("read end"), std::string::npos) << r.err;
}

TEST(AnonCli, EverySubcommandHasHelp) {
    for (std::vector<std::string> args : {std::vector<std::string>{"anon", "--help"},
                                          {"anon", "send", "--help"},
                                          {"anon", "recv", "--help"},
                                          {"anon", "read", "--help"},
                                          {"anon", "write", "--help"}}) {
        auto r = test::run(npipe_args(args));
        EXPECT_EQ(r.exit_code, 0) << args[1];
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
    }
}

// The children of this npipe process (scanning /proc/*/stat for the parent pid).
std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> children;
    for (auto& entry : std::filesystem::directory_iterator("/proc")) {
        std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::ifstream stat(entry.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(stat)), {});
        auto close = text.rfind(')');
        if (close == std::string::npos)
            continue;
        std::istringstream rest(text.substr(close + 2));
        char state;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent)
            children.push_back(std::stoi(name));
    }
    return children;
}

// The child is cat (bash execs it with the pipe as stdin), a program that opens no descriptor
// of its own once it is reading: whatever else it holds, it inherited.
TEST(AnonCli, TheChildHoldsOnlyStdioAndItsPipeEnd) {
    test::child parent(
        npipe_args({"anon", "send", "--", "bash", "-c", "exec cat <&\"$1\"", "bash", "{}"}));
    ASSERT_TRUE(parent.write_stdin("ping\n"));
    // Once ping is out, the child has exec'd cat and is blocked reading the pipe.
    ASSERT_TRUE(parent.wait_for_output("ping\n"));
    auto children = children_of(parent.pid());
    ASSERT_EQ(children.size(), 1u);
    std::string fd_dir = "/proc/" + std::to_string(children[0]) + "/fd/";

    std::set<int> fds;
    for (auto& entry : std::filesystem::directory_iterator(fd_dir))
        fds.insert(std::stoi(entry.path().filename().string()));
    ASSERT_EQ(fds.size(), 4u);
    auto it = fds.begin();
    EXPECT_EQ(*it++, 0);
    EXPECT_EQ(*it++, 1);
    EXPECT_EQ(*it++, 2);
    int handle = *it;
    // The fourth is the handle: the same pipe that bash put on cat's stdin.
    std::string pipe_link = std::filesystem::read_symlink(fd_dir + std::to_string(handle));
    EXPECT_TRUE(pipe_link.starts_with("pipe:")) << pipe_link;
    EXPECT_EQ(std::filesystem::read_symlink(fd_dir + "0").string(), pipe_link);

    parent.close_stdin();
    EXPECT_EQ(parent.wait(), 0);
    EXPECT_EQ(parent.out(), "ping\n");
}

// Mono's Process.Start closes every descriptor above 2 in its children, so a Mono parent cannot
// pass an anonymous pipe on at all (see docs); an npipe parent drives a C# child both ways.
TEST(AnonCli, SendMovesFiftyMebibytesToACSharpChild) {
    NPIPE_REQUIRE_MONO();
    std::string exe = test::csharp_program("AnonChild");
    ASSERT_FALSE(exe.empty());
    const std::string data = test::pattern(fifty_mib, 21);
    auto argv = npipe_args({"anon", "send", "--"});
    for (auto& a : test::mono_command(exe, {"in", "{}"}))
        argv.push_back(a);
    auto r = test::run(argv, data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(same_bytes(r.out, data));
}

TEST(AnonCli, RecvMovesFiftyMebibytesFromACSharpChild) {
    NPIPE_REQUIRE_MONO();
    std::string exe = test::csharp_program("AnonChild");
    ASSERT_FALSE(exe.empty());
    const std::string data = test::pattern(fifty_mib, 22);
    auto argv = npipe_args({"anon", "recv", "--"});
    for (auto& a : test::mono_command(exe, {"out", "{}"}))
        argv.push_back(a);
    auto r = test::run(argv, data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(same_bytes(r.out, data));
}

}  // namespace
}  // namespace npipe
