// The one measuring harness behind `npipe bench` and every C++ baseline in bench/: the four
// measurements, timing, percentiles, JSON output, CPU pinning and the fork into a server and a
// client process. A system under test only says how to listen, accept, connect, read and write
// (a `transport`); everything that decides what a figure means lives here, so all systems are
// measured by the same code.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace npipe::bench {

enum class test_kind { latency, throughput, messages, connect };

/// Parses "latency" / "throughput" / "messages" / "connect".
std::optional<test_kind> parse_test(std::string_view name);
std::string_view to_string(test_kind test);

/// What to measure. Both processes get the same config (the server is forked from the client),
/// so each end knows the whole schedule and no end waits for an end-of-stream: message
/// transports such as ZeroMQ have none.
struct config {
    test_kind test = test_kind::latency;
    std::string system;           ///< the name printed in results ("uds-stream", "npipe", ...)
    std::size_t size = 0;         ///< bytes per ping, write or message (0: the test's default)
    std::size_t count = 0;        ///< round trips, writes, messages or connections (0: default)
    int clients = 1;              ///< concurrent connections, each with its share of the count
    int rounds = 5;               ///< timed rounds for rates; the median round is reported
    int cpu_server = -1;          ///< CPU to pin the server process to (-1: not pinned)
    int cpu_client = -1;          ///< CPU to pin the client process to (-1: not pinned)
    std::size_t buffer_size = 0;  ///< kernel buffer size to request, where the system has one
    bool json = false;            ///< print one JSON object on one line

    /// Fills size and count with the test's defaults where they are 0.
    void apply_defaults();
};

/// An error that ends a benchmark run with a message (bad arguments, unsupported test, a
/// failing system). Programs print what() and exit with status 1.
struct bench_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// One connected end. For a stream transport write_all writes every byte and read_some returns
/// what one read got (0 at end of stream); for a message transport write_all sends one message
/// and read_some receives one whole message (its size).
class connection {
  public:
    virtual ~connection() = default;
    virtual void write_all(std::span<const std::byte> data) = 0;
    virtual std::size_t read_some(std::span<std::byte> buffer) = 0;
};

/// The server's listening side, created in the server process before the client is let go.
class listener {
  public:
    virtual ~listener() = default;
    /// What the client needs to connect (a path, a port, a pipe name); sent to the client.
    virtual std::string endpoint() const = 0;
    /// Accepts the next connection for server thread `slot` (0..clients-1). Called
    /// concurrently from `clients` threads, each with its own slot.
    virtual std::unique_ptr<connection> accept(int slot) = 0;
    /// Called from another thread when the client has failed and the server must end: wakes
    /// every blocked accept() and I/O of the server's connections with a failure. Only where
    /// the server is a thread of the client's process (Windows); a forked server is killed.
    virtual void close() {}
};

enum class role { server, client };

/// A system under test.
class transport {
  public:
    virtual ~transport() = default;
    /// Whether write_all / read_some move whole messages (see connection).
    virtual bool message_oriented() const { return false; }
    /// Throws bench_error when this system cannot run the configured test.
    virtual void check(const config&) const {}
    /// Runs in the single process before the fork (e.g. to create a pipe pair both inherit).
    virtual void before_fork(const config&) {}
    /// Runs in each process right after the fork and CPU pinning.
    virtual void in_process(role, const config&) {}
    /// Server process: start listening.
    virtual std::unique_ptr<listener> listen(const config&) = 0;
    /// Client process: one new connection to the endpoint the listener reported. Called
    /// concurrently from `clients` threads.
    virtual std::unique_ptr<connection> connect(const std::string& endpoint, const config&) = 0;
};

/// What a run measured.
struct result {
    config cfg;
    // latency, in microseconds per round trip
    double median_us = 0, p99_us = 0, p999_us = 0, mean_us = 0, min_us = 0, max_us = 0;
    std::size_t samples = 0;
    // rates (per second) of the timed rounds; `rate` is their median
    std::vector<double> round_rates;
    double rate = 0;  ///< bytes/s (throughput), messages/s, connections/s
    // CPU time (user + system, every thread) each process spent over the whole run, warm-up
    // included, per operation of the run (round trip, write, message or connection), and as a
    // share of one CPU over the client's wall-clock time: what an option such as spinning
    // costs beside what it buys. Negative when not measured.
    double cpu_client_us = -1, cpu_server_us = -1;
    double cpu_client_share = -1, cpu_server_share = -1;
    /// latency: every timed round trip in microseconds, in the order they ran (one client's
    /// after another's)
    std::vector<double> round_trips_us;
};

/// Forks the server process, runs the client in this one, and returns the client's figures.
/// Pins each process when cfg says so. Throws bench_error when either end fails. On Windows,
/// which has no fork, the server runs on a thread of this process (in_process is called on
/// each end's thread, before_fork once) and each end's CPU time is its threads'.
result run(transport& t, const config& cfg);

/// Prints a result as text, or as one JSON line when cfg.json.
void print(const result& r, std::ostream& out);

/// Two systems' latency measured together, for a ratio that both figures earned on the same
/// machine state. A virtual machine's cross-CPU wake-up can settle on one of several levels (the
/// VM behind docs/benchmarks.md: about 17, 20, 23, 28, 35, 45, 60 and 74 us per round trip),
/// and which one a run lands on can change with a few hundred nanoseconds of work per
/// operation, so two systems measured one after the other can differ 3x for a reason neither
/// controls. run_alternating connects the client to both systems and alternates between them in
/// blocks of `block` round trips over one pair of processes, so both meet the same state in
/// turn. It cannot stop a machine whose wake-up adapts to the work of each block: there, a
/// system that adds even a tenth of a microsecond per operation can land a level higher.
struct alternating_result {
    result first, second;  ///< each system's latency figures (cfg.system: its name)
    std::size_t block = 0;
};

/// Latency test only, one client, two transports that both move bytes or both move messages;
/// cfg.count round trips in all, half of them on each system. bench_error otherwise.
alternating_result run_alternating(transport& first, std::string first_name, transport& second,
                                   std::string second_name, const config& cfg, std::size_t block);

/// Prints both systems' figures and the ratio of their medians (first / second), as text or as
/// one JSON line when cfg.json.
void print(const alternating_result& r, std::ostream& out);

/// Parses the options shared by every baseline program:
///   TEST [--size BYTES] [--count N] [--clients N] [--rounds N] [--buffer-size BYTES]
///   [--cpu-server N] [--cpu-client N] [--json]
/// Throws bench_error with a usage message on bad input.
config parse_args(std::span<char* const> args, std::string system);

/// main() of a baseline: parses args (everything after argv[0]), runs, prints; returns the
/// process exit status. Errors go to stderr as "<system>: <message>".
int run_main(int argc, char** argv, std::string system, transport& t);

/// Parses a byte count: digits with an optional K, M or G suffix (KiB, MiB, GiB; "k", "KiB"
/// also accepted). Throws bench_error on anything else.
std::size_t parse_size(std::string_view text);

/// Nearest-rank percentile (p in 0..100) of sorted values.
double percentile(const std::vector<double>& sorted, double p);

/// Pins the calling process (and threads it creates later) to one CPU; -1 does nothing. On
/// Windows: the calling thread (SetThreadAffinityMask), for CPUs 0..63.
void pin_to_cpu(int cpu);

/// Reads exactly buffer.size() bytes from a stream connection (bench_error at end of stream).
void read_exact(connection& c, std::span<std::byte> buffer);

}  // namespace npipe::bench
