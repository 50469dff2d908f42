// The CLI as a new user meets it: one-line errors with the documented exit codes (2 usage,
// 1 runtime), durations with units on every timeout flag, flags that would be ignored refused,
// and help that documents all of it.
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_support.hpp"

namespace npipe::test {
namespace {

using namespace pipe_io;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// A usage error: exit 2, one line on stderr starting "npipe: ", nothing on stdout.
void expect_usage_error(const run_result& r, const std::string& part = {}) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("npipe: ", 0), 0u) << r.err;
    EXPECT_TRUE(contains(r.err, part)) << "'" << part << "' not in: " << r.err;
    EXPECT_EQ(r.out, "");
}

class ExitCodes : public tmpdir_test {};

TEST_F(ExitCodes, UnknownSubcommandNamesItAndTheClosestMatch) {
    auto r = run({cli(), "sreve", "x"}, {}, 10s);
    expect_usage_error(r, "unknown subcommand 'sreve'");
    EXPECT_TRUE(contains(r.err, "'serve'")) << r.err;
    r = run({cli(), "chat", "serv"}, {}, 10s);
    expect_usage_error(r, "unknown subcommand 'serv'");
    EXPECT_TRUE(contains(r.err, "'server'")) << r.err;
    r = run({cli(), "zzzzzz"}, {}, 10s);
    expect_usage_error(r, "unknown subcommand 'zzzzzz'");
    EXPECT_TRUE(contains(r.err, "connect")) << "lists the subcommands: " << r.err;
}

TEST_F(ExitCodes, ParseErrorsAreOneLineWithExitTwo) {
    expect_usage_error(run({cli()}, {}, 10s));
    expect_usage_error(run({cli(), "connect"}, {}, 10s), "NAME");
    expect_usage_error(run({cli(), "connect", "x", "--no-such-flag"}, {}, 10s), "no-such-flag");
    expect_usage_error(run({cli(), "serve", "x", "--max-instances", "0"}, {}, 10s),
                       "max-instances");
    expect_usage_error(run({cli(), "bench", "latncy"}, {}, 10s), "latncy");
}

TEST_F(ExitCodes, RuntimeErrorsExitOne) {
    auto r = run({cli(), "connect", unique_pipe_name("none"), "--timeout", "100ms"}, {}, 10s);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
}

TEST_F(ExitCodes, InvalidNameSaysWhichRuleIsBroken) {
    struct bad {
        std::string name, rule;
    };
    for (auto& c : std::vector<bad>{{"a/b", "may not contain '/'"},
                                    {"anonymous", "reserved"},
                                    {"/tmp/dir/", "may not end with '/'"}}) {
        auto r = run({cli(), "connect", c.name, "--timeout", "100ms"}, {}, 10s);
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_EQ(line_count(r.err), 1) << r.err;
        EXPECT_TRUE(contains(r.err, c.rule)) << c.name << ": " << r.err;
        EXPECT_TRUE(contains(r.err, "invalid pipe name")) << r.err;
    }
}

TEST_F(ExitCodes, HelpDocumentsExitCodesDurationsAndSignals) {
    auto r = run({cli(), "--help"}, {}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* part : {"Exit status", "2 usage error", "1 runtime error", "130", "500ms",
                             "SIGINT, SIGTERM and SIGHUP", "Examples:"})
        EXPECT_TRUE(contains(r.out, part)) << "'" << part << "' not in --help:\n" << r.out;
}

TEST_F(ExitCodes, EverySubcommandHelpHasExamples) {
    for (std::vector<std::string> sub : {std::vector<std::string>{"serve"},
                                         {"connect"},
                                         {"list"},
                                         {"bench"},
                                         {"chat"},
                                         {"demo"},
                                         {"anon"}}) {
        auto argv = std::vector<std::string>{cli()};
        argv.insert(argv.end(), sub.begin(), sub.end());
        argv.push_back("--help");
        auto r = run(argv, {}, 10s);
        EXPECT_EQ(r.exit_code, 0) << sub[0];
        EXPECT_TRUE(contains(r.out, "Examples:")) << "npipe " << sub[0] << " --help:\n" << r.out;
    }
}

// ---- Durations ----

TEST_F(ExitCodes, TimeoutsTakeUnitsAndBareNumbersKeepTheirMeaning) {
    auto name = unique_pipe_name("none");
    for (std::vector<std::string> argv :
         {std::vector<std::string>{cli(), "connect", name, "--timeout", "0.2s"},
          {cli(), "connect", name, "--timeout", "200ms"},
          {cli(), "connect", name, "--timeout", "200"},
          {cli(), "chat", "client", name, "--timeout", "200ms"},
          {cli(), "demo", "client", name, "--timeout", "0.2s"}}) {
        auto start = std::chrono::steady_clock::now();
        auto r = run(argv, {}, 20s);
        auto took = std::chrono::steady_clock::now() - start;
        EXPECT_EQ(r.exit_code, 1) << argv[1] << " " << argv.back() << ": " << r.err;
        EXPECT_TRUE(contains(r.err, "timed out")) << r.err;
        EXPECT_GE(took, 200ms);
    }
}

TEST_F(ExitCodes, BadOrNegativeDurationsAreRefusedNamingTheUnits) {
    auto name = unique_pipe_name();
    expect_usage_error(run({cli(), "connect", name, "--timeout", "-5"}, {}, 10s), "negative");
    expect_usage_error(run({cli(), "connect", name, "--timeout", "1x"}, {}, 10s), "ms, s, m");
    expect_usage_error(run({cli(), "serve", name, "--idle-timeout", "-1"}, {}, 10s), "negative");
    expect_usage_error(run({cli(), "serve", name, "--write-timeout", "soon"}, {}, 10s),
                       "not a duration");
    expect_usage_error(run({cli(), "chat", "client", name, "--timeout", "-1s"}, {}, 10s),
                       "negative");
}

TEST_F(ExitCodes, ServeIdleTimeoutTakesUnits) {
    auto name = unique_pipe_name("idle");
    child server({cli(), "serve", name, "--idle-timeout", "300ms"});
    ASSERT_TRUE(wait_for_server(name, 10s)) << server.err();
    child client({cli(), "connect", name, "--timeout", "5s"});  // silent, stdin open
    auto code = server.wait(20s);
    ASSERT_TRUE(code) << "the idle client was not dropped";
    EXPECT_EQ(*code, 1) << server.err();
    EXPECT_TRUE(contains(server.err(), "idle timeout")) << server.err();
}

// ---- Flags that would be ignored ----

TEST_F(ExitCodes, TlsFlagsWithoutAServerAreRefused) {
    auto help = run({cli(), "connect", "--help"}, {}, 10s);
    if (!contains(help.out, "--token-file"))
        GTEST_SKIP() << "this CLI is built without remote pipes";
    auto token = dir() + "/token";
    run({"sh", "-c", "echo secret > " + token}, {}, 10s);
    expect_usage_error(run({cli(), "connect", unique_pipe_name(), "--token-file", token}, {}, 10s),
                       "--server");
    expect_usage_error(run({cli(), "connect", unique_pipe_name(), "--ca", token}, {}, 10s),
                       "--server");
}

TEST_F(ExitCodes, ServeFlagsForACommandAreRefusedWithoutOne) {
    expect_usage_error(run({cli(), "serve", unique_pipe_name(), "--once"}, {}, 10s), "--once");
    expect_usage_error(run({cli(), "serve", unique_pipe_name(), "--max-instances", "4"}, {}, 10s),
                       "--max-instances");
}

TEST_F(ExitCodes, BufferSizeTakesTheSizeSyntaxEverywhere) {
    auto r =
        run({cli(), "anon", "send", "--buffer-size", "128K", "--", cli(), "anon", "read", "{}"},
            "sized\n", 20s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "sized\n");
    expect_usage_error(run({cli(), "anon", "send", "--buffer-size", "12Q", "--", "true"}, {}, 10s),
                       "12Q");
    expect_usage_error(run({cli(), "bench", "latency", "--buffer-size", "12Q"}, {}, 10s), "12Q");
}

// ---- bench ----

TEST_F(ExitCodes, BenchRefusesAbsurdRunsWithoutForce) {
    auto r = run({cli(), "bench", "throughput", "--count", "100M"}, {}, 10s);
    expect_usage_error(r, "--force");
    EXPECT_TRUE(contains(r.err, "TiB")) << "says how much: " << r.err;
}

TEST_F(ExitCodes, BenchBytesSetsTheAmountToMove) {
    auto r = run(
        {cli(), "bench", "throughput", "--bytes", "8M", "--size", "64K", "--rounds", "1", "--json"},
        {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"count\":128")) << r.out;
    expect_usage_error(run({cli(), "bench", "connect", "--bytes", "1M"}, {}, 10s), "--count");
}

TEST_F(ExitCodes, BenchVersusRawSplitsTheRoundTripsBetweenBothSystems) {
    // 400 timed round trips after a warm-up of 40, the client switching every 7: round trips
    // 40..439 carried by npipe are those with (i / 7) even, 202 of them. A server that switched
    // at another round trip than the client would wait on the other connection forever.
    auto r = run({cli(), "bench", "latency", "--versus-raw", "--count", "400", "--block", "7",
                  "--size", "3", "--json"},
                 {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"system\":\"npipe\",\"versus\":\"uds-stream\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"count\":202,\"versus_count\":198,\"block\":7")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"ratio\":")) << r.out;
}

TEST_F(ExitCodes, BenchVersusRawIsForByteModeLatency) {
    expect_usage_error(run({cli(), "bench", "throughput", "--versus-raw"}, {}, 10s),
                       "latency only");
    expect_usage_error(run({cli(), "bench", "latency", "--versus-raw", "--message"}, {}, 10s),
                       "--message");
    expect_usage_error(run({cli(), "bench", "latency", "--block", "5"}, {}, 10s), "--versus-raw");
    // Ten round trips in turns of 50 are all npipe's: no figure for raw, said so.
    auto r =
        run({cli(), "bench", "latency", "--versus-raw", "--block", "50", "--count", "10"}, {}, 30s);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "leave none for uds-stream")) << r.err;
}

}  // namespace
}  // namespace npipe::test
