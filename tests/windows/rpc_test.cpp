// npipe::rpc on Windows beyond the portable cases (tests/rpc/rpc_test.cpp, built into the same
// program): `npipe.exe rpc` as a user runs it (serve answered by a command per request, call
// and notify against it and against the library, exit codes and stderr), and the asynchronous
// connection on Asio's proactor.
#include <windows.h>

#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#ifdef NPIPE_HAVE_RPC_ASIO
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/rpc/async_connection.hpp"
#endif
#include "npipe/anonymous_pipe.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/rpc/rpc.hpp"
#include "support/test_support.hpp"
#include "win_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using npipe::rpc::json;
using npipe::test::unique_pipe_name;
using npipe::test::windows::console_group_process;
using npipe::test::windows::peer_process;
using npipe::test::windows::program_path;
using npipe::test::windows::server_listens;
namespace rpc = npipe::rpc;

// npipe.exe run to its end: its status and what it wrote.
struct npipe_result {
    std::optional<unsigned long> status;  // nullopt: still running after a minute (then ended)
    std::string out, err;
};

// npipe.exe with `args`, stdout and stderr on anonymous pipes read to their end.
npipe_result run_npipe(const std::vector<std::string>& args) {
    npipe::anonymous_pipe_server out(npipe::pipe_direction::in), err(npipe::pipe_direction::in);
    npipe::process_options options;
    options.stdout_fd = out.client_handle();
    options.stderr_fd = err.client_handle();
    peer_process npipe_exe(args, "npipe.exe", options);
    out.dispose_local_copy_of_client_handle();
    err.dispose_local_copy_of_client_handle();
    npipe_result r;
    std::thread err_reader([&] { r.err = npipe::test::pipe_io::read_to_end(err); });
    r.out = npipe::test::pipe_io::read_to_end(out);
    err_reader.join();
    r.status = npipe_exe.wait(60s);
    return r;
}

// Where rpc_handler.exe's `note` writes, removed at the end.
class note_file {
  public:
    note_file() {
        char dir[MAX_PATH];
        if (!::GetTempPathA(MAX_PATH, dir))
            throw std::runtime_error("no temp directory");
        path_ = std::string(dir) + unique_pipe_name("noted");
    }
    ~note_file() {
        ::DeleteFileA(path_.c_str());
        ::DeleteFileA((path_ + ".tmp").c_str());
    }
    note_file(const note_file&) = delete;
    note_file& operator=(const note_file&) = delete;
    const std::string& path() const { return path_; }

    /// What `note` recorded ("" if nothing within 30 s). Polled until it opens, not until it
    /// exists: a plain open can fail for a moment after the rename made the name appear (the
    /// rename's own handle of the file does not share deletion with it; seen under Wine).
    std::string content() const {
        auto deadline = std::chrono::steady_clock::now() + 30s;
        do {
            std::ifstream in(path_, std::ios::binary);
            if (in.is_open())
                return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
            ::Sleep(10);  // polling for a file the server's command writes, bounded
        } while (std::chrono::steady_clock::now() < deadline);
        return {};
    }

  private:
    std::string path_;
};

// Each test has `npipe.exe rpc serve NAME --framing F -- rpc_handler.exe NOTE_FILE` running,
// ended with the test, in each framing F.
class NpipeExeRpc : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        serve_.emplace(std::vector<std::string>{"rpc", "serve", name, "--framing", GetParam(), "--",
                                                program_path("rpc_handler.exe"), note.path()},
                       "npipe.exe");
        ASSERT_TRUE(server_listens(name));
    }
    /// `npipe.exe rpc ARGS... --framing F`.
    npipe_result rpc(std::vector<std::string> args) {
        args.insert(args.begin(), "rpc");
        args.insert(args.end(), {"--framing", GetParam()});
        return run_npipe(args);
    }

    const std::string name = unique_pipe_name("rpc-serve");
    note_file note;

  private:
    std::optional<peer_process> serve_;
};

TEST_P(NpipeExeRpc, ServeAnswersCallAndNotifyThroughACommand) {
    auto r = rpc({"call", name, "echo", R"([1,{"a":"b"}])"});
    EXPECT_EQ(r.status, 0ul) << r.err;
    EXPECT_EQ(r.out, "[1,{\"a\":\"b\"}]\n");
    r = rpc({"call", name, "whoami"});
    EXPECT_EQ(r.status, 0ul) << r.err;
    EXPECT_EQ(r.out, "\"whoami\"\n");
    r = rpc({"call", name, "fail"});
    EXPECT_EQ(r.status, 1ul);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("-32603 it failed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("\"exit_code\":3"), std::string::npos) << r.err;
    r = rpc({"notify", name, "note", R"({"k":7})"});
    EXPECT_EQ(r.status, 0ul) << r.err;
    EXPECT_EQ(note.content(), R"({"k":7})");
}

TEST_P(NpipeExeRpc, TimeoutCancelsTheCallAndKillsTheCommand) {
    auto r = rpc({"call", name, "hang", "--timeout", "300ms"});
    EXPECT_EQ(r.status, 1ul);
    EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
    // The server is still there for the next client.
    r = rpc({"call", name, "echo", "[2]"});
    EXPECT_EQ(r.status, 0ul) << r.err;
    EXPECT_EQ(r.out, "[2]\n");
}

INSTANTIATE_TEST_SUITE_P(Rpc, NpipeExeRpc,
                         ::testing::Values("header", "length", "newline", "message"));

// npipe.exe calls a C++ connection's typed method, and reports its error response.
TEST(NpipeExeRpcLibrary, CallsATypedHandlerAndReportsAnErrorResponse) {
    auto name = unique_pipe_name("rpc-lib");
    npipe::named_pipe_server first(name, npipe::pipe_direction::in_out, 2),
        second(name, npipe::pipe_direction::in_out, 2);
    auto called = std::async(std::launch::async, [&] {
        auto sum = run_npipe({"rpc", "call", name, "add", R"({"a":2,"b":40})", "--timeout", "20s"});
        auto failed = run_npipe({"rpc", "call", name, "fail", "--timeout", "20s"});
        return std::pair(sum, failed);
    });
    // One npipe.exe after the other, each to an instance of its own.
    std::vector<std::unique_ptr<rpc::connection>> served;
    for (auto* pipe : {&first, &second}) {
        pipe->wait_for_connection(30s);
        auto& conn = *served.emplace_back(std::make_unique<rpc::connection>(*pipe));
        conn.add_method("add", [](int a, int b) { return a + b; }, {"a", "b"});
        conn.add_method("fail", [] { throw rpc::rpc_error(4711, "it failed", json{{"why", 1}}); });
        conn.start();
    }
    auto [sum, failed] = called.get();
    EXPECT_EQ(sum.status, 0ul) << sum.err;
    EXPECT_EQ(sum.out, "42\n");
    EXPECT_EQ(failed.status, 1ul);
    EXPECT_EQ(failed.out, "");
    // stderr is in text mode, as for any Windows program: the line ends in \r\n.
    EXPECT_EQ(failed.err.rfind("npipe: 4711 it failed (data: {\"why\":1})", 0), 0u) << failed.err;
}

// Ctrl+Break stops `rpc serve` with status 0, as SIGTERM does on Linux (skipped under Wine, which
// cannot send console events without a terminal).
TEST(NpipeExeRpcServe, CtrlBreakStopsItWithStatusZero) {
    auto name = unique_pipe_name("rpc-break");
    console_group_process serve("\"" + program_path("npipe.exe") + "\" rpc serve " + name +
                                " -- \"" + program_path("rpc_handler.exe") + "\" unused");
    ASSERT_TRUE(server_listens(name));
    auto code = serve.ctrl_break_and_wait(30s);
    if (IsSkipped())
        return;
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0ul);
}

TEST(NpipeExeRpcUsage, BadParamsNoServerRemoteServerAndHelp) {
    auto r = run_npipe({"rpc", "call", "x", "m", "not json"});
    EXPECT_EQ(r.status, 2ul) << r.err;
    auto none = unique_pipe_name("rpc-none");
    r = run_npipe({"rpc", "call", none, "m", "--timeout", "100ms"});
    EXPECT_EQ(r.status, 1ul);
    EXPECT_NE(r.err.find(none), std::string::npos) << r.err;
    // Remote pipes need npipe::remote, which is not built on Windows: refused, with the reason.
    r = run_npipe({"rpc", "call", "x", "m", "--server", "elsewhere", "--timeout", "100ms"});
    EXPECT_EQ(r.status, 2ul);
    EXPECT_NE(r.err.find("npipe::remote is not built on Windows"), std::string::npos) << r.err;
    r = run_npipe({"rpc", "serve", "x"});
    EXPECT_EQ(r.status, 2ul);
    EXPECT_NE(r.err.find("after --"), std::string::npos) << r.err;
    r = run_npipe({"--help"});
    EXPECT_EQ(r.status, 0ul);
    EXPECT_NE(r.out.find("JSON-RPC 2.0 over a pipe"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("`rpc` (not ported)"), std::string::npos) << r.out;
}

#ifdef NPIPE_HAVE_RPC_ASIO
// An async_connection on Asio's proactor and a synchronous connection call each other.
TEST(RpcAsyncWindows, AsyncAndSyncConnectionsCallEachOther) {
    ::asio::io_context io;
    auto name = unique_pipe_name("rpc-async");
    npipe::asio::named_pipe_acceptor acceptor(io, name);
    std::promise<rpc::async_connection> accepted;
    acceptor.async_accept([&](std::error_code ec, npipe::asio::pipe_stream p) {
        if (ec) {
            accepted.set_exception(std::make_exception_ptr(std::system_error(ec)));
            return;
        }
        rpc::async_connection conn(std::move(p));
        conn.add_method("add", [](int a, int b) { return a + b; });
        conn.start();
        accepted.set_value(conn);
    });
    auto work = ::asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    struct stop_at_end {
        ::asio::io_context& io;
        std::thread& runner;
        ~stop_at_end() {
            io.stop();
            runner.join();
        }
    } stop{io, runner};

    npipe::named_pipe_client pipe(name);
    pipe.connect(20s);
    auto server_future = accepted.get_future();
    ASSERT_EQ(server_future.wait_for(30s), std::future_status::ready);
    auto server = server_future.get();
    rpc::connection client(pipe);
    client.add_method("twice", [](int x) { return 2 * x; });
    client.start();
    EXPECT_EQ(client.call("add", json::array({40, 2}), {.timeout = 30s}), 42);
    json params = json::array({21});
    auto back = server.async_call("twice", params, ::asio::use_future);
    ASSERT_EQ(back.wait_for(30s), std::future_status::ready);
    EXPECT_EQ(back.get(), 42);
    server.close();
}
#endif

}  // namespace
