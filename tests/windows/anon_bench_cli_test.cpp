// npipe.exe's `anon` and `bench` on Windows, run as a user runs them: the copy of npipe.exe
// beside this program, its stdin, stdout and stderr anonymous pipes of ours. `anon` with npipe
// and plain Win32 children (win32_peer.c) both ways, the child's exit code, a command that
// cannot start; `bench` with each test and its --json line read back.
// Under Wine, what Wine lacks is skipped with the reason (NPIPE_SKIP_ON_WINE).
#include <windows.h>

#include <algorithm>
#include <cctype>
#include <map>
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
using npipe::pipe_direction;
using npipe::test::windows::program_path;
namespace pipe_io = npipe::test::pipe_io;

constexpr std::size_t mib = std::size_t{1} << 20;

struct npipe_result {
    std::optional<int> exit_code;  ///< nullopt: still running at the deadline (then killed)
    std::string out, err;
};

// npipe.exe with `args`, `input` on its stdin (then the end of it), its stdout and stderr read
// to their ends. A run still going after `timeout` is terminated (exit_code empty).
npipe_result run_npipe(std::vector<std::string> args, const std::string& input = {},
                       std::chrono::milliseconds timeout = 120s) {
    npipe::anonymous_pipe_server in(pipe_direction::out), out(pipe_direction::in),
        err(pipe_direction::in);
    npipe::process_options options;
    options.stdin_fd = in.client_handle();
    options.stdout_fd = out.client_handle();
    options.stderr_fd = err.client_handle();
    args.insert(args.begin(), program_path("npipe.exe"));
    auto child = npipe::spawn(args, std::move(options));
    // Only the child (and what it starts) holds the other ends: each stream ends with them.
    in.dispose_local_copy_of_client_handle();
    out.dispose_local_copy_of_client_handle();
    err.dispose_local_copy_of_client_handle();
    npipe_result r;
    std::thread feeder([&] {
        std::error_code ec;  // a child that stops reading is the test's to judge
        in.write(pipe_io::bytes(input), ec);
        in.close();
    });
    std::thread error_reader([&] { r.err = pipe_io::read_to_end(err); });
    r.out = pipe_io::read_to_end(out);
    if (auto status = child.wait_for(timeout))
        r.exit_code = status->code;
    else
        child.kill();
    error_reader.join();
    feeder.join();
    return r;
}

TEST(NpipeExeAnon, SendCopiesStdinToAnNpipeChild) {
    const auto data = npipe::test::pattern(8 * mib, 31);
    auto r =
        run_npipe({"anon", "send", "--", program_path("npipe.exe"), "anon", "read", "{}"}, data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), data.size());
    EXPECT_TRUE(r.out == data) << "the bytes differ";
    EXPECT_EQ(r.err, "");
}

TEST(NpipeExeAnon, RecvCopiesAnNpipeChildsDataToStdout) {
    const auto data = npipe::test::pattern(8 * mib, 32);
    auto r =
        run_npipe({"anon", "recv", "--", program_path("npipe.exe"), "anon", "write", "{}"}, data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), data.size());
    EXPECT_TRUE(r.out == data) << "the bytes differ";
    EXPECT_EQ(r.err, "");
}

// A plain Win32 child: the handle string is an ordinary handle value it can ReadFile, and its
// stdin is not ours (it reads nothing of the data there).
TEST(NpipeExeAnon, SendToAPlainWin32ChildThatWritesWhatItReads) {
    const auto data = npipe::test::pattern(3 * mib, 33);
    auto r = run_npipe({"anon", "send", program_path("win32_peer.exe"), "anon-echo", "{}"}, data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), data.size());
    EXPECT_TRUE(r.out == data) << "the bytes differ";
}

TEST(NpipeExeAnon, TheChildsExitCodeIsNpipes) {
    auto r =
        run_npipe({"anon", "recv", "--", program_path("win32_peer.exe"), "anon-exit", "{}", "7"});
    EXPECT_EQ(r.exit_code, 7) << r.err;
    EXPECT_EQ(r.out, "exiting with 7");
    EXPECT_EQ(r.err, "");
    // A child that reads nothing and exits: not an npipe error, its code is ours.
    r = run_npipe({"anon", "send", "--", program_path("win32_peer.exe"), "anon-exit", "{}", "5"},
                  "ignored");
    EXPECT_EQ(r.exit_code, 5) << r.err;
}

TEST(NpipeExeAnon, ACommandThatCannotStartIsOneLineNamingIt) {
    const std::string missing = "C:\\nonexistent\\npipe-cmd.exe";
    auto r = run_npipe({"anon", "send", "--", missing, "{}"});
    EXPECT_EQ(r.exit_code, 127) << r.err;
    EXPECT_EQ(pipe_io::line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;

    r = run_npipe({"anon", "read", "abc"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(pipe_io::line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("'abc'"), std::string::npos) << r.err;
}

TEST(NpipeExeAnon, EverySubcommandHasHelpAndNpipeNoLongerListsThemAsMissing) {
    for (const char* sub : {"send", "recv", "read", "write"}) {
        auto r = run_npipe({"anon", sub, "--help"});
        EXPECT_EQ(r.exit_code, 0) << sub;
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
    }
    auto r = run_npipe({"anon", "send", "--help"});
    EXPECT_NE(r.out.find("handle value"), std::string::npos) << r.out;
    r = run_npipe({"bench", "--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("two threads of one process"), std::string::npos) << r.out;
    r = run_npipe({"--help"});
    EXPECT_EQ(r.out.find("`anon` and `bench`"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("`bench --shared-memory`"), std::string::npos) << r.out;
}

// One JSON object of flat values (numbers, strings, arrays of numbers), as bench --json prints
// it: the keys and their values as text; nullopt when it is not well-formed.
std::optional<std::map<std::string, std::string>> parse_flat_json(const std::string& text) {
    std::map<std::string, std::string> fields;
    std::size_t i = 0;
    auto skip = [&] {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
            ++i;
    };
    auto string = [&]() -> std::optional<std::string> {
        if (i >= text.size() || text[i] != '"')
            return std::nullopt;
        auto end = text.find('"', i + 1);
        if (end == std::string::npos)
            return std::nullopt;
        std::string s = text.substr(i + 1, end - i - 1);
        i = end + 1;
        return s;
    };
    auto number = [&]() -> std::optional<std::string> {
        std::size_t used = 0;
        try {
            std::stod(text.substr(i), &used);
        } catch (const std::exception&) {
            return std::nullopt;
        }
        std::string s = text.substr(i, used);
        i += used;
        return s;
    };
    skip();
    if (i >= text.size() || text[i++] != '{')
        return std::nullopt;
    for (;;) {
        skip();
        auto key = string();
        skip();
        if (!key || i >= text.size() || text[i++] != ':')
            return std::nullopt;
        skip();
        std::optional<std::string> value;
        if (i < text.size() && text[i] == '"') {
            value = string();
        } else if (i < text.size() && text[i] == '[') {
            std::size_t start = i++;
            for (bool first = true; i < text.size() && text[i] != ']'; first = false) {
                if (!first && text[i++] != ',')
                    return std::nullopt;
                if (!number())
                    return std::nullopt;
            }
            if (i >= text.size())
                return std::nullopt;
            value = text.substr(start, ++i - start);
        } else {
            value = number();
        }
        if (!value || fields.count(*key))
            return std::nullopt;
        fields[*key] = *value;
        skip();
        if (i < text.size() && text[i] == ',') {
            ++i;
            continue;
        }
        if (i >= text.size() || text[i++] != '}')
            return std::nullopt;
        skip();
        return i == text.size() ? std::optional(fields) : std::nullopt;
    }
}

struct bench_case {
    const char* test;
    std::vector<std::string> flags;
    const char* rate_key;  ///< the figure the test reports
};

class NpipeExeBench : public ::testing::TestWithParam<bench_case> {};

// Figures under Wine mean little: what is checked is that each test runs over \\.\pipe\ and
// prints one well-formed JSON line with its figures.
TEST_P(NpipeExeBench, RunsAndPrintsOneJsonLine) {
    const auto& c = GetParam();
    std::vector<std::string> args = {"bench", c.test, "--json", "--rounds", "2"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto r = run_npipe(args, {}, 300s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(pipe_io::line_count(r.out), 1) << r.out;
    auto json = parse_flat_json(r.out);
    ASSERT_TRUE(json) << "not a flat JSON object: " << r.out;
    auto& fields = *json;
    bool message = std::find(c.flags.begin(), c.flags.end(), "--message") != c.flags.end();
    EXPECT_EQ(fields["system"], message ? "npipe-message" : "npipe");
    EXPECT_EQ(fields["test"], c.test);
    for (const char* key : {"size", "count", "clients", c.rate_key, "cpu_client_us",
                            "cpu_server_us", "cpu_client_share", "cpu_server_share"}) {
        ASSERT_TRUE(fields.count(key)) << key << " missing: " << r.out;
        EXPECT_GE(std::stod(fields[key]), 0) << key;
    }
    EXPECT_GT(std::stod(fields[c.rate_key]), 0) << r.out;
    if (std::string(c.test) != "latency") {
        EXPECT_TRUE(fields["rounds"].starts_with("[")) << r.out;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Tests, NpipeExeBench,
    ::testing::Values(bench_case{"latency", {"--count", "200"}, "median_us"},
                      bench_case{"latency", {"--count", "200", "--clients", "2"}, "median_us"},
                      bench_case{"throughput", {"--count", "64"}, "gbps"},
                      bench_case{"messages", {"--count", "500"}, "msgs_per_s"},
                      bench_case{"messages", {"--count", "500", "--message"}, "msgs_per_s"},
                      bench_case{"connect", {"--count", "20"}, "conns_per_s"}),
    [](const auto& info) {
        std::string name = info.param.test;
        for (const auto& f : info.param.flags)
            if (f.starts_with("--") && f != "--count")
                name += "_" + f.substr(2);
        return name;
    });

TEST(NpipeExeBenchText, PrintsTheFiguresAsText) {
    auto r = run_npipe({"bench", "latency", "--count", "100"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("npipe latency: 100 round trips of 64 B"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("median "), std::string::npos) << r.out;
}

// Either end failing ends the run with one line and status 1: the server thread before it
// listens, or the client while the server thread waits for it (its listener is closed).
TEST(NpipeExeBenchText, AnEndThatFailsEndsTheRunWithItsReason) {
    for (const char* flag : {"--cpu-server", "--cpu-client"}) {
        auto r = run_npipe({"bench", "latency", "--count", "10", flag, "99"}, {}, 60s);
        EXPECT_EQ(r.exit_code, 1) << flag << ": " << r.err;
        EXPECT_EQ(pipe_io::line_count(r.err), 1) << r.err;
        EXPECT_NE(r.err.find("cannot pin to CPU 99"), std::string::npos) << r.err;
    }
}

TEST(NpipeExeBenchText, SharedMemoryIsRefusedWithTheReason) {
    auto r = run_npipe({"bench", "latency", "--count", "10", "--shared-memory"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("not available on Windows"), std::string::npos) << r.err;
}

}  // namespace
