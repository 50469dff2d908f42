// The npipe command-line tool against itself: help, errors, serve/connect transfers, the
// live-name and stale-file rules, --once, list, and half-close.
//
// Every test runs under its own TMPDIR (set in this process, so the CLI children inherit it).
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "npipe/named_pipe_client.hpp"
#include "npipe/pipe_name.hpp"
#include "support/test_support.hpp"

namespace npipe::test {
namespace {

using namespace pipe_io;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// A one-line error: "npipe: ..." and a newline, nothing else.
void expect_one_line_error(const run_result& r) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.exit_code, -1) << "timed out";
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("npipe: ", 0), 0u) << r.err;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
}

// Leaves a socket file at `path` with no server behind it, as a crashed server does.
class Cli : public tmpdir_test {};

// ---- Help ----

// The subcommand names listed under "Subcommands:" in a help text.
std::vector<std::string> subcommands_in(const std::string& help) {
    std::vector<std::string> names;
    std::istringstream lines(help);
    bool in_section = false;
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("Subcommands:", 0) == 0 || line.rfind("SUBCOMMANDS:", 0) == 0) {
            in_section = true;
            continue;
        }
        if (!in_section)
            continue;
        if (line.empty() || line[0] != ' ') {
            in_section = false;
            continue;
        }
        std::istringstream words(line);
        std::string word;
        words >> word;
        names.push_back(word);
    }
    return names;
}

TEST_F(Cli, HelpWorksOnEverySubcommand) {
    // Walk the tree the CLI itself advertises, so a new subcommand is covered too.
    std::vector<std::vector<std::string>> todo{{}};
    std::set<std::string> seen;
    while (!todo.empty()) {
        auto path = todo.back();
        todo.pop_back();
        std::vector<std::string> argv{cli()};
        argv.insert(argv.end(), path.begin(), path.end());
        argv.push_back("--help");
        auto r = run(argv, {}, 10s);
        std::string joined;
        for (auto& p : path)
            joined += " " + p;
        EXPECT_EQ(r.exit_code, 0) << "npipe" << joined << " --help: " << r.err;
        EXPECT_TRUE(contains(r.out, "Usage:")) << "npipe" << joined << " --help:\n" << r.out;
        // The help is the subcommand's own, not the parent's.
        auto usage = r.out.substr(r.out.find("Usage:"));
        usage = usage.substr(0, usage.find('\n'));
        EXPECT_TRUE(contains(usage, joined + " ")) << "npipe" << joined << ": " << usage;
        seen.insert(joined);
        for (auto& sub : subcommands_in(r.out)) {
            auto next = path;
            next.push_back(sub);
            todo.push_back(next);
        }
    }
    for (const char* expected :
         {" demo", " demo server", " demo client", " serve", " connect", " list"})
        EXPECT_TRUE(seen.count(expected)) << "no help reached for npipe" << expected;
}

// ---- Errors ----

TEST_F(Cli, ConnectTimesOutWithOneLineError) {
    auto name = unique_pipe_name("nobody");
    auto start = std::chrono::steady_clock::now();
    auto r = run({cli(), "connect", name, "--timeout", "200"}, {}, 10s);
    auto elapsed = std::chrono::steady_clock::now() - start;
    expect_one_line_error(r);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(contains(r.err, name)) << r.err;
    EXPECT_TRUE(contains(r.err, "timed out")) << r.err;
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 5s);
}

TEST_F(Cli, InvalidNamesGiveOneLineErrors) {
    struct bad_name {
        std::string name, reason;
    };
    std::vector<bad_name> cases{
        {"a/b", "invalid pipe name"},
        {"anonymous", "invalid pipe name"},
        {"Anonymous", "invalid pipe name"},
        {std::string(200, 'x'), "too long"},
        {"/" + std::string(200, 'y'), "too long"},
    };
    for (auto& c : cases) {
        for (std::vector<std::string> argv :
             {std::vector<std::string>{cli(), "connect", c.name, "--timeout", "200"},
              std::vector<std::string>{cli(), "serve", c.name},
              std::vector<std::string>{cli(), "serve", c.name, "--once", "--", "true"},
              std::vector<std::string>{cli(), "demo", "server", c.name}}) {
            SCOPED_TRACE(argv[1] + " '" + c.name + "'");
            auto r = run(argv, {}, 10s);
            expect_one_line_error(r);
            EXPECT_TRUE(contains(r.err, c.reason)) << r.err;
            EXPECT_EQ(r.out, "");
        }
    }
    // Nothing was created for any of them.
    EXPECT_TRUE(std::filesystem::is_empty(dir()));
}

TEST_F(Cli, BadMaxInstancesIsRejected) {
    for (std::string n : {"0", "255", "-1", "two"}) {
        auto r =
            run({cli(), "serve", unique_pipe_name(), "--max-instances", n, "--", "true"}, {}, 10s);
        EXPECT_NE(r.exit_code, 0) << n;
        EXPECT_NE(r.exit_code, -1) << n;
        EXPECT_TRUE(contains(r.err, "max-instances")) << r.err;
    }
}

// ---- A live server keeps its name; stale files are reused; other files are left alone ----

TEST_F(Cli, ServeOnLiveNameFailsInUseAndLeavesServerWorking) {
    auto name = unique_pipe_name("live");
    child first({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << first.err();

    auto second = run({cli(), "serve", name}, {}, 10s);
    expect_one_line_error(second);
    EXPECT_TRUE(contains(second.err, "in use")) << second.err;
    EXPECT_TRUE(contains(second.err, name)) << second.err;
    auto with_cmd = run({cli(), "serve", name, "--", "cat"}, {}, 10s);
    expect_one_line_error(with_cmd);
    EXPECT_TRUE(contains(with_cmd.err, "in use")) << with_cmd.err;

    // The first server only accepts one client: had the checks connected to it, this client
    // would never be served.
    child client({cli(), "connect", name, "--timeout", "5000"});
    {
        stdin_feeder feed(client, "ping\n");
        ASSERT_TRUE(first.wait_for_output("ping\n", 10s)) << first.err() << client.err();
    }
    stdin_feeder feed(first, "pong\n");
    ASSERT_EQ(client.wait(10s), 0) << client.err();
    EXPECT_EQ(client.out(), "pong\n");
    ASSERT_EQ(first.wait(10s), 0) << first.err();
    EXPECT_EQ(first.out(), "ping\n");
}

TEST_F(Cli, ServeWithCommandKeepsItsNameAgainstASecondServe) {
    // Synchronises through real clients only (not through list_pipes), so that a liveness check
    // that wrongly reports a live server as stale shows up as exactly that: a hijacked name.
    auto name = unique_pipe_name("keep");
    child first({cli(), "serve", name, "--", "sh", "-c", "read line; echo \"first $line\""});
    auto hello = run({cli(), "connect", name, "--timeout", "10000"}, "a\n", 15s);
    ASSERT_EQ(hello.exit_code, 0) << hello.err << first.err();
    ASSERT_EQ(hello.out, "first a\n");

    auto second = run({cli(), "serve", name, "--once", "--", "echo", "hijacked"}, {}, 5s);
    expect_one_line_error(second);
    EXPECT_TRUE(contains(second.err, "in use")) << second.err;

    auto again = run({cli(), "connect", name, "--timeout", "2000"}, "b\n", 10s);
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out, "first b\n");
    ::kill(first.pid(), SIGTERM);
    EXPECT_EQ(first.wait(10s), 0) << first.err();
}

TEST_F(Cli, StaleSocketFileIsReused) {
    auto name = unique_pipe_name("stale");
    auto path = pipe_path(name);
    make_stale_socket(path);
    ASSERT_TRUE(std::filesystem::is_socket(path));

    child server({cli(), "serve", name});
    server.write_stdin("fresh");
    server.close_stdin();
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    auto client = run({cli(), "connect", name, "--timeout", "5000"}, {}, 10s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "fresh");
    ASSERT_EQ(server.wait(10s), 0) << server.err();
    EXPECT_FALSE(std::filesystem::exists(path)) << "the server removes its socket at exit";
}

TEST_F(Cli, RegularFileAtRootedPathIsRefusedAndKept) {
    auto path = dir() + "/precious";
    write_file(path, "do not delete");
    for (std::vector<std::string> argv :
         {std::vector<std::string>{cli(), "serve", path},
          std::vector<std::string>{cli(), "serve", path, "--once", "--", "true"},
          std::vector<std::string>{cli(), "demo", "server", path}}) {
        auto r = run(argv, {}, 10s);
        expect_one_line_error(r);
        EXPECT_TRUE(contains(r.err, "not a socket")) << r.err;
        EXPECT_TRUE(contains(r.err, path)) << r.err;
        // Said once (#17 item 8): the message used to give the cause twice.
        EXPECT_EQ(r.err.find("not a socket"), r.err.rfind("not a socket")) << r.err;
    }
    ASSERT_TRUE(std::filesystem::is_regular_file(path));
    EXPECT_EQ(read_file(path), "do not delete");
}

// ---- serve --once, serve -- CMD ----

TEST_F(Cli, ServeOnceExitsWithCommandStatus) {
    for (int status : {0, 7}) {
        auto name = unique_pipe_name("once");
        child server({cli(), "serve", name, "--once", "--", "sh", "-c",
                      "cat; exit " + std::to_string(status)});
        ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
        auto client = run({cli(), "connect", name, "--timeout", "5000"}, "abc\n", 10s);
        EXPECT_EQ(client.exit_code, 0) << client.err;
        EXPECT_EQ(client.out, "abc\n");
        EXPECT_EQ(server.wait(10s), status) << server.err();
        EXPECT_EQ(server.out(), "") << "the command's output goes to the client";
    }
}

TEST_F(Cli, ServeRefusesMissingCommandBeforeListening) {
    // A server that cannot run CMD must not take clients: it fails at once, as a shell would.
    for (bool once : {true, false}) {
        auto name = unique_pipe_name("nocmd");
        std::vector<std::string> argv{cli(), "serve", name};
        if (once)
            argv.push_back("--once");
        argv.insert(argv.end(), {"--", dir() + "/no-such-program"});
        auto r = run(argv, {}, 10s);
        EXPECT_EQ(r.exit_code, 127) << r.err;
        EXPECT_EQ(line_count(r.err), 1) << r.err;
        EXPECT_TRUE(contains(r.err, "no-such-program")) << r.err;
        EXPECT_FALSE(std::filesystem::exists(pipe_path(name)));
    }
    write_file(dir() + "/not-executable", "#!/bin/sh\n");
    auto r =
        run({cli(), "serve", unique_pipe_name("noexec"), "--", dir() + "/not-executable"}, {}, 10s);
    EXPECT_EQ(r.exit_code, 126) << r.err;
}

TEST_F(Cli, ServeWithCommandServesClientsOneAfterAnother) {
    auto name = unique_pipe_name("inetd");
    child server({cli(), "serve", name, "--", "sh", "-c", "read line; echo \"hello $line\""});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    for (int i = 0; i < 3; ++i) {
        auto who = "client" + std::to_string(i);
        auto client = run({cli(), "connect", name, "--timeout", "5000"}, who + "\n", 10s);
        EXPECT_EQ(client.exit_code, 0) << client.err;
        EXPECT_EQ(client.out, "hello " + who + "\n");
    }
    ::kill(server.pid(), SIGINT);
    EXPECT_EQ(server.wait(10s), 0) << server.err();
    EXPECT_FALSE(std::filesystem::exists(pipe_path(name)));
}

// ---- list ----

struct list_row {
    std::string state, owner, mode, name;
};

std::optional<list_row> find_row(const std::string& listing, const std::string& name) {
    std::istringstream lines(listing);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        list_row row;
        words >> row.state >> row.owner >> row.mode >> row.name;
        if (row.name == name)
            return row;
    }
    return std::nullopt;
}

TEST_F(Cli, ListShowsLiveAndStalePipesWithOwnerAndMode) {
    std::string me = ::getpwuid(::geteuid())->pw_name;
    auto live = unique_pipe_name("live");
    auto stale = unique_pipe_name("stale");
    auto not_socket = unique_pipe_name("file");
    child server({cli(), "serve", live, "--current-user-only"});
    server.close_stdin();
    ASSERT_TRUE(wait_for_server(live, 10s)) << server.err();
    make_stale_socket(pipe_path(stale));
    ASSERT_EQ(::chmod(pipe_path(stale).c_str(), 0640), 0);
    write_file(pipe_path(not_socket), "x");
    auto rooted = dir() + "/rooted-pipe";
    child rooted_server({cli(), "serve", rooted});
    rooted_server.close_stdin();
    ASSERT_TRUE(wait_for_server(rooted, 10s)) << rooted_server.err();

    auto r = run({cli(), "list", "--all"}, {}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");

    auto row = find_row(r.out, live);
    ASSERT_TRUE(row) << r.out;
    EXPECT_EQ(row->state, "live");
    EXPECT_EQ(row->owner, me);
    EXPECT_EQ(row->mode, "0600");

    row = find_row(r.out, stale);
    ASSERT_TRUE(row) << r.out;
    EXPECT_EQ(row->state, "stale");
    EXPECT_EQ(row->owner, me);
    EXPECT_EQ(row->mode, "0640");

    EXPECT_FALSE(find_row(r.out, not_socket)) << "a plain file is not a pipe:\n" << r.out;

    row = find_row(r.out, rooted);
    ASSERT_TRUE(row) << "rooted pipes are found through /proc/net/unix:\n" << r.out;
    EXPECT_EQ(row->state, "live");
    EXPECT_EQ(row->owner, me);

    // Listing did not connect: each server still takes its first (and only) client.
    for (auto* s : {&server, &rooted_server}) {
        auto name = s == &server ? live : rooted;
        auto client = run({cli(), "connect", name, "--timeout", "5000"}, "hi", 10s);
        EXPECT_EQ(client.exit_code, 0) << client.err;
        EXPECT_EQ(s->wait(10s), 0) << s->err();
        EXPECT_EQ(s->out(), "hi");
    }
}

// ---- Transfers and half-close ----

TEST_F(Cli, ServeAndConnectMove50MiBBothWaysAtOnce) {
    auto name = unique_pipe_name("bulk");
    auto to_client = pattern(50 * mib, 61);
    auto to_server = pattern(50 * mib, 62);
    child server({cli(), "serve", name});
    stdin_feeder feed_server(server, to_client);
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child client({cli(), "connect", name, "--timeout", "5000"});
    stdin_feeder feed_client(client, to_server);

    ASSERT_EQ(client.wait(60s), 0) << client.err();
    ASSERT_EQ(server.wait(60s), 0) << server.err();
    EXPECT_EQ(client.out().size(), to_client.size());
    EXPECT_TRUE(client.out() == to_client) << "content differs";
    EXPECT_EQ(server.out().size(), to_server.size());
    EXPECT_TRUE(server.out() == to_server) << "content differs";
    EXPECT_EQ(client.err(), "");
    EXPECT_EQ(server.err(), "");
}

TEST_F(Cli, ServeKeepsReadingAfterItsStdinEnds) {
    auto name = unique_pipe_name("half");
    child server({cli(), "serve", name});
    server.write_stdin("hello\n");
    server.close_stdin();
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();

    // Read everything the server sends, up to its end of stream; only then send ours.
    named_pipe_client client(name);
    client.connect(5s);
    std::string got;
    std::byte buffer[4096];
    while (auto n = client.read(buffer))
        got.append(reinterpret_cast<const char*>(buffer), n);
    EXPECT_EQ(got, "hello\n");
    auto data = pattern(8 * mib, 63);
    client.write(std::as_bytes(std::span(data.data(), data.size())));
    client.close();

    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out().size(), data.size());
    EXPECT_TRUE(server.out() == data) << "content differs";
}

TEST_F(Cli, ConnectKeepsReadingAfterItsStdinEnds) {
    auto name = unique_pipe_name("half");
    child server({cli(), "serve", name});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child client({cli(), "connect", name, "--timeout", "5000"});
    client.write_stdin("question\n");
    client.close_stdin();
    ASSERT_TRUE(server.wait_for_output("question\n", 10s)) << server.err();
    // The client's stdin is long gone; the answer must still reach it in full.
    auto answer = pattern(8 * mib, 64);
    { stdin_feeder feed(server, answer); }
    ASSERT_EQ(client.wait(30s), 0) << client.err();
    ASSERT_EQ(server.wait(30s), 0) << server.err();
    EXPECT_EQ(server.out(), "question\n");
    EXPECT_EQ(client.out().size(), answer.size());
    EXPECT_TRUE(client.out() == answer) << "content differs";
}

TEST_F(Cli, DataWrittenJustBeforeCloseArrivesInFull) {
    // A command that writes and exits at once, and a client that sends and exits at once: the
    // closing side must not cut off what is still in flight.
    auto file = dir() + "/payload";
    auto payload = pattern(8 * mib, 65);
    write_file(file, payload);
    auto name = unique_pipe_name("close");
    child server({cli(), "serve", name, "--once", "--", "cat", file});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    auto client = run({cli(), "connect", name, "--timeout", "5000"}, {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out.size(), payload.size());
    EXPECT_TRUE(client.out == payload) << "content differs";
    EXPECT_EQ(server.wait(10s), 0) << server.err();

    auto out_file = dir() + "/received";
    auto name2 = unique_pipe_name("close");
    child sink({cli(), "serve", name2, "--once", "--", "sh", "-c", "cat > '" + out_file + "'"});
    ASSERT_TRUE(wait_for_server(name2, 10s)) << sink.err();
    auto sender = run({cli(), "connect", name2, "--timeout", "5000"}, payload, 30s);
    EXPECT_EQ(sender.exit_code, 0) << sender.err;
    ASSERT_EQ(sink.wait(10s), 0) << sink.err();
    auto received = read_file(out_file);
    EXPECT_EQ(received.size(), payload.size());
    EXPECT_TRUE(received == payload) << "content differs";
}

}  // namespace
}  // namespace npipe::test
