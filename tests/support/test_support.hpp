// Shared helpers for npipe's tests: child processes with captured output, unique pipe names,
// and C# peers compiled with Mono's mcs.
#pragma once

#include <gtest/gtest.h>

#include "npipe/errors.hpp"
#include "npipe/options.hpp"
#include "npipe/pipe_stream.hpp"
#include "npipe/types.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace npipe::test {

using namespace std::chrono_literals;

/// A pipe name no other test (or test run) uses: "npipe-test-<pid>-<n>-<tag>".
std::string unique_pipe_name(const std::string& tag = "p");

/// The npipe error `f` throws (a pipe_error in npipe's category); a test failure when it throws
/// none or another kind.
npipe::errc error_of(const std::function<void()>& f);

/// The npipe CLI built with the tests.
std::string cli();

/// A child process whose stdin we write and whose stdout and stderr are collected by threads.
/// The destructor kills (SIGKILL) and reaps a child still running, so a failing test never
/// leaves one behind.
class child {
  public:
    struct options {
        std::map<std::string, std::string> env;  ///< added to (or replacing in) our environment
        bool capture_stdin = true;   ///< give the child a pipe for stdin (else /dev/null)
        std::optional<user_id> uid;  ///< run as this user (we must be root)
        std::optional<group_id> gid;
    };

    child(std::vector<std::string> argv);
    child(std::vector<std::string> argv, options opts);
    ~child();
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    process_id pid() const { return pid_; }
    /// Writes to the child's stdin (all of it, blocking); false if the child closed it.
    bool write_stdin(const std::string& data);
    void close_stdin();
    /// Waits up to `timeout` for the child to exit; its exit code (128+signal when killed), or
    /// std::nullopt on timeout (the child keeps running).
    std::optional<int> wait(std::chrono::milliseconds timeout = 60s);
    /// Kills the child with `sig` and reaps it.
    void kill(int sig = 9);
    /// Output collected so far; complete once wait() has returned a value.
    std::string out();
    std::string err();
    /// Blocks until stdout contains `text` or the timeout passes; true when found.
    bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout = 30s);
    /// The same for stderr: blocks until it contains `text` at least `times` times.
    bool wait_for_error(const std::string& text, int times = 1,
                        std::chrono::milliseconds timeout = 30s);

    struct shared;  ///< output collected by the reader threads

  private:
    process_id pid_ = -1;
    int stdin_fd_ = -1;
    std::optional<int> status_;
    std::shared_ptr<shared> io_;
    std::thread out_thread_, err_thread_;
};

/// How many times `text` occurs in `in` (without overlaps).
int count_of(const std::string& in, const std::string& text);

/// Runs a command to completion with `input` on stdin. Kills it after `timeout`.
struct run_result {
    int exit_code = -1;  ///< -1 when it timed out
    std::string out, err;
};
run_result run(std::vector<std::string> argv, const std::string& input = {},
               std::chrono::milliseconds timeout = 120s, child::options opts = {});

/// Blocks until a server is listening on the pipe `name` (checked through the kernel, without
/// connecting), or the timeout passes; true when it is.
bool wait_for_server(const std::string& name, std::chrono::milliseconds timeout = 30s);

/// Whether mcs and mono are installed. Interop tests fail (not skip) without them unless
/// NPIPE_ALLOW_NO_MONO=1 is set, so CI can never pass by skipping them.
bool have_mono();

/// Compiles tests/dotnet/<file>.cs with `mcs -r:System.Core` (once per test run) and returns
/// the path of the .exe; fails the test when compilation fails.
std::string csharp_program(const std::string& file);

/// `mono <exe> args...`
std::vector<std::string> mono_command(const std::string& exe, std::vector<std::string> args = {});

/// The runtimes the C# peers of tests/interop/dotnet run on: every interop case runs on both.
enum class csharp_runtime { mono, dotnet10 };

/// "mono" or "dotnet10": the last part of a parameterized test's name.
std::string runtime_name(csharp_runtime runtime);

/// Why the runtime cannot run the peers here ("" when it can). .NET 10's peers are built once per
/// build tree by CMake (the csharp_peers_net10 target); without `dotnet` at configure time
/// there are none.
std::string runtime_missing(csharp_runtime runtime);

/// The command that runs the peer `program` (tests/interop/dotnet/<program>.cs) with `args`:
/// `mono <program>.exe args...` (compiled with mcs on first use) or
/// `dotnet Peers.dll <program> args...`. Empty (and the test failed) when mcs fails.
std::vector<std::string> csharp_command(csharp_runtime runtime, const std::string& program,
                                        std::vector<std::string> args = {});

/// GoogleTest prints a runtime by its name (ctest lists "GetParam() = dotnet10").
void PrintTo(csharp_runtime runtime, std::ostream* os);

/// Names a test instance after its runtime: Interop/Suite.Test/dotnet10.
struct runtime_param_name {
    template <class Param>
    std::string operator()(const Param& info) const {
        return runtime_name(info.param);
    }
};

/// The transports the behaviour tests run on (tests/sync): the socket, and shared memory
/// between two npipe ends that both opted in (pipe_options::shared_memory).
enum class transport_kind { socket, shared_memory };

/// Options that choose `kind` (set on both ends of a pipe).
inline pipe_options transport_options(transport_kind kind) {
    pipe_options options;
    options.shared_memory = kind == transport_kind::shared_memory;
    return options;
}

/// "socket" or "shared_memory".
std::string transport_name(transport_kind kind);

/// GoogleTest prints a transport by its name.
void PrintTo(transport_kind kind, std::ostream* os);

/// Names a test instance after its transport: Suite/Fixture.Test/shared_memory.
struct transport_param_name {
    template <class Param>
    std::string operator()(const Param& info) const {
        return transport_name(info.param);
    }
};

/// Instantiates the parameterised `fixture` once per transport. Windows has no shared-memory
/// transport yet: its pipes are native pipes, the "socket" instance.
#ifdef _WIN32
#define NPIPE_ON_EVERY_TRANSPORT(fixture)                                              \
    INSTANTIATE_TEST_SUITE_P(transport, fixture,                                       \
                             ::testing::Values(::npipe::test::transport_kind::socket), \
                             ::npipe::test::transport_param_name())
#else
#define NPIPE_ON_EVERY_TRANSPORT(fixture)                                                     \
    INSTANTIATE_TEST_SUITE_P(transport, fixture,                                              \
                             ::testing::Values(::npipe::test::transport_kind::socket,         \
                                               ::npipe::test::transport_kind::shared_memory), \
                             ::npipe::test::transport_param_name())
#endif

/// Deterministic pseudo-random bytes (xorshift) of the given size: transfers check these.
std::string pattern(std::size_t size, std::uint32_t seed = 1);

/// A fresh directory under the temp dir, removed with its contents at destruction.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

/// A fresh temp_dir set as $TMPDIR for this process (and the children it starts) until
/// destruction, when the old value comes back: simple pipe names then map into a directory
/// private to one test.
class tmpdir_scope {
  public:
    tmpdir_scope();
    ~tmpdir_scope();
    tmpdir_scope(const tmpdir_scope&) = delete;
    tmpdir_scope& operator=(const tmpdir_scope&) = delete;
    const std::string& path() const { return dir_.path(); }

  private:
    temp_dir dir_;
    std::optional<std::string> old_;
};

/// A fixture whose every test runs with a tmpdir_scope of its own (dir() is its path).
class tmpdir_test : public ::testing::Test {
  protected:
    const std::string& dir() const { return dir_.path(); }

  private:
    tmpdir_scope dir_;
};

/// Leaves what a crashed server leaves at `path`: a socket file nobody listens on.
void make_stale_socket(const std::string& path);

/// Writes `data` to a child's stdin from another thread (it blocks until the child reads), then
/// closes it; the destructor waits for that thread.
class stdin_feeder {
  public:
    stdin_feeder(child& c, std::string data);
    ~stdin_feeder();
    stdin_feeder(const stdin_feeder&) = delete;
    stdin_feeder& operator=(const stdin_feeder&) = delete;

  private:
    std::thread thread_;
};

/// Small data helpers for tests on npipe::pipe_stream, in their own namespace so that files
/// which say `using namespace npipe::test` keep their own helpers of the same names.
namespace pipe_io {

constexpr std::size_t mib = std::size_t{1} << 20;

/// A string's bytes, for pipe_stream::write.
std::span<const std::byte> bytes(const std::string& s);

/// Reads until `n` bytes have arrived or the stream ends; what arrived.
std::string read_n(npipe::pipe_stream& pipe, std::size_t n);

/// Reads until the end of the stream.
std::string read_to_end(npipe::pipe_stream& pipe);

/// The number of newline characters in `text`.
int line_count(const std::string& text);

}  // namespace pipe_io

}  // namespace npipe::test

/// Makes sure the test's C# runtime is there. A missing Mono fails as NPIPE_REQUIRE_MONO does. A
/// missing .NET 10 skips the test with the reason on a developer's machine and fails it in CI
/// (CI=true), which has the SDK: a CI run can never pass by not running the .NET tests.
#define NPIPE_REQUIRE_RUNTIME(runtime)                                                 \
    do {                                                                               \
        if ((runtime) == ::npipe::test::csharp_runtime::mono) {                        \
            NPIPE_REQUIRE_MONO();                                                      \
        } else if (auto why = ::npipe::test::runtime_missing(runtime); !why.empty()) { \
            const char* ci = std::getenv("CI");                                        \
            if (ci && std::string(ci) == "true")                                       \
                FAIL() << why << " (CI=true: the .NET 10 tests must run)";             \
            GTEST_SKIP() << why;                                                       \
        }                                                                              \
    } while (0)

/// Fails the test when Mono is missing (CI installs it), or skips it when the developer set
/// NPIPE_ALLOW_NO_MONO=1: interop must never pass by silently not running.
#define NPIPE_REQUIRE_MONO()                                                     \
    do {                                                                         \
        if (!::npipe::test::have_mono()) {                                       \
            if (std::getenv("NPIPE_ALLOW_NO_MONO"))                              \
                GTEST_SKIP() << "Mono missing";                                  \
            FAIL() << "mcs/mono missing: apt-get install mono-mcs mono-runtime " \
                      "libmono-system-core4.0-cil";                              \
        }                                                                        \
    } while (0)
