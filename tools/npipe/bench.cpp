// `npipe bench`: npipe's named pipes measured by the harness every baseline in bench/ uses
// (bench/common), through the public API only: named_pipe_server / named_pipe_client,
// read and write. bench/run.sh runs it beside the baselines and writes docs/benchmarks.md.
// On Windows the pipes are \\.\pipe\ pipes and the server is a thread (harness_windows.cpp).
#ifdef _WIN32
#include <process.h>
#else
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#endif

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "cleanup.hpp"
#include "commands.hpp"
#include "common/harness.hpp"
#ifndef _WIN32
#include "common/socket_transports.hpp"
#endif
#include "flags.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#ifdef NPIPE_HAVE_REMOTE
#include "npipe/gateway.hpp"
#include "npipe/remote_options.hpp"
#endif

namespace npipe::cli {
namespace {

// Bytes the client process has moved, for the progress line (the server is another process).
// Counted only while a progress line shows (stderr a terminal): an atomic add per read and
// write is a cost the baselines' adapters do not pay.
std::atomic<std::uint64_t> bytes_moved{0};
std::atomic<bool> counting_bytes{false};

class pipe_connection : public bench::connection {
  public:
    void write_all(std::span<const std::byte> data) override {
        stream_.write(data);
        if (counting_bytes.load(std::memory_order_relaxed))
            bytes_moved.fetch_add(data.size(), std::memory_order_relaxed);
    }
    std::size_t read_some(std::span<std::byte> buffer) override {
        auto n = stream_.read(buffer);
        if (counting_bytes.load(std::memory_order_relaxed))
            bytes_moved.fetch_add(n, std::memory_order_relaxed);
        return n;
    }

  protected:
    // A reference, not a virtual accessor: a call per read and write that the baselines'
    // adapters do not make.
    explicit pipe_connection(pipe_stream& stream) : stream_(stream) {}

  private:
    pipe_stream& stream_;
};

/// A server instance lent to one connection: dropping it disconnects, so the instance can take
/// the next client (the connect test).
class server_connection : public pipe_connection {
  public:
    explicit server_connection(named_pipe_server& s) : pipe_connection(s), s_(s) {}
    ~server_connection() override {
        try {
            s_.disconnect();
        } catch (const pipe_error&) {
            // Closed by listener::close() (the client failed): nothing left to disconnect.
        }
    }

  private:
    named_pipe_server& s_;
};

class client_connection : public pipe_connection {
  public:
    // The base holds a reference to c_, bound before c_ is built and used only after.
    explicit client_connection(named_pipe_client c) : pipe_connection(c_), c_(std::move(c)) {}

  private:
    named_pipe_client c_;
};

/// The library's performance options under test (`--coalesce`, `--spin-us`,
/// `--shared-memory`).
struct tuning {
    bool coalesce = false;
    int spin_us = 0;
    bool shared_memory = false;
};

/// `--remote DIR`: the client reaches the pipe through a TLS gateway (npipe::gateway, run on a
/// thread of the server process) on 127.0.0.1, as a remote client would. DIR holds the
/// gateway's certificate for 127.0.0.1 and key, and the CA that signed it, as bench/run.sh
/// makes them with openssl. Both ends share a token made before the fork.
struct remote_setup {
    std::string cert_dir;  ///< empty: a local pipe
    std::string token;
    bool enabled() const { return !cert_dir.empty(); }
    std::string file(const char* name) const { return cert_dir + "/" + name; }
};

pipe_options options_for(const bench::config& cfg, const tuning& t) {
    pipe_options o;
    o.in_buffer_size = cfg.buffer_size;
    o.out_buffer_size = cfg.buffer_size;
    o.coalesce_messages = t.coalesce;
    o.spin_before_block = std::chrono::microseconds(t.spin_us);
    o.shared_memory = t.shared_memory;
    return o;
}

// Message mode is being added to the library alongside this command. These templates compile
// the message-mode calls only when the library has them, so `--message` works as soon as it
// lands and fails with a clear error until then.
template <class Server = named_pipe_server>
constexpr bool have_message_mode() {
    return std::is_constructible_v<Server, std::string_view, pipe_direction, int, transmission_mode,
                                   pipe_options>;
}

template <class Server = named_pipe_server>
Server make_server(const std::string& name, int instances, bool message, const pipe_options& o) {
    if constexpr (have_message_mode<Server>()) {
        if (message)
            return Server(name, pipe_direction::in_out, instances, transmission_mode::message, o);
    }
    return Server(name, pipe_direction::in_out, instances, o);
}

/// A client reads whole messages only in message read mode, which it can set once connected
/// (it learns the pipe's type from the server).
template <class Stream>
void use_message_reads(Stream& s) {
    if constexpr (requires { s.set_read_mode(transmission_mode::message); })
        s.set_read_mode(transmission_mode::message);
}

/// One server instance per client slot, all created before the client is let go, so every
/// client finds an instance and the instance limit is the client count.
class npipe_transport : public bench::transport {
  public:
    npipe_transport(bool message, tuning t, remote_setup remote)
        : message_(message), tuning_(t), remote_(std::move(remote)) {}
    bool message_oriented() const override { return message_; }

    void check(const bench::config&) const override {
        if (!remote_.enabled())
            return;
#ifdef NPIPE_HAVE_REMOTE
        for (const char* f : {"ca.pem", "gateway.pem", "gateway.key"})
            if (!std::ifstream(remote_.file(f)))
                throw bench::bench_error("--remote: cannot read " + remote_.file(f) +
                                         " (bench/run.sh makes it with openssl)");
#else
        throw bench::bench_error("--remote: this build has no remote pipes (npipe::remote)");
#endif
    }

    void before_fork(const bench::config&) override {
        if (!remote_.enabled())
            return;
        std::random_device random;
        const char* digits = "0123456789abcdef";
        for (int i = 0; i < 32; ++i)
            remote_.token += digits[random() % 16];
    }

    std::unique_ptr<bench::listener> listen(const bench::config& cfg) override {
        struct pipe_listener : bench::listener {
            std::string name, address;  ///< address: the gateway's, for remote runs
            std::vector<named_pipe_server> instances;
            std::unique_ptr<remove_on_signal> cleanup;
#ifdef NPIPE_HAVE_REMOTE
            std::unique_ptr<gateway> relay;
            std::thread relay_thread;
            ~pipe_listener() override {
                if (relay) {
                    relay->stop();
                    relay_thread.join();
                }
            }
#endif
            std::string endpoint() const override {
                return address.empty() ? name : address + "/" + name;
            }
            std::unique_ptr<bench::connection> accept(int slot) override {
                auto& s = instances.at(static_cast<std::size_t>(slot));
                s.wait_for_connection();
                return std::make_unique<server_connection>(s);
            }
            void close() override {
                for (auto& s : instances)
                    s.close();
            }
        };
        auto l = std::make_unique<pipe_listener>();
#ifdef _WIN32
        l->name = "npipe-bench-" + std::to_string(::_getpid());
#else
        l->name = "npipe-bench-" + std::to_string(::getpid());
        // This is the server process: it ends with the bench (SIGTERM when the client process
        // dies, whatever killed it), and removes its socket file on the way out.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
        l->instances.reserve(static_cast<std::size_t>(cfg.clients));
        stop_signals_held hold;
        for (int i = 0; i < cfg.clients; ++i)
            l->instances.push_back(
                make_server(l->name, cfg.clients, message_, options_for(cfg, tuning_)));
        l->cleanup = std::make_unique<remove_on_signal>(l->instances.front().socket_path());
        hold.release();
#ifndef _WIN32
        if (::getppid() == 1)
            throw bench::bench_error("the bench ended while its server started");
#endif
#ifdef NPIPE_HAVE_REMOTE
        if (remote_.enabled()) {
            gateway_options o;
            o.listen = "127.0.0.1:0";
            o.cert_file = remote_.file("gateway.pem");
            o.key_file = remote_.file("gateway.key");
            o.token = remote_.token;
            o.allow = {l->name};
            l->relay = std::make_unique<gateway>(std::move(o));
            l->address = "127.0.0.1:" + std::to_string(l->relay->port());
            l->relay_thread = std::thread([g = l->relay.get()] { g->run(); });
        }
#endif
        return l;
    }

    std::unique_ptr<bench::connection> connect(const std::string& endpoint,
                                               const bench::config& cfg) override {
        auto options = options_for(cfg, tuning_);
        std::string server = ".", name = endpoint;
#ifdef NPIPE_HAVE_REMOTE
        if (remote_.enabled()) {
            auto slash = endpoint.find('/');
            server = endpoint.substr(0, slash);
            name = endpoint.substr(slash + 1);
            auto tls = std::make_shared<remote_options>();
            tls->ca_file = remote_.file("ca.pem");
            tls->token = remote_.token;
            options.remote = std::move(tls);
        }
#endif
        named_pipe_client c(server, name, pipe_direction::in_out, options);
        c.connect(std::chrono::seconds(30));
        if (message_)
            use_message_reads(c);
        return std::make_unique<client_connection>(std::move(c));
    }

  private:
    bool message_;
    tuning tuning_;
    remote_setup remote_;
};

// Bytes a run moves in all (warm-up included, roughly), for refusing absurd runs.
double bytes_in_run(const bench::config& cfg) {
    double per_op = static_cast<double>(cfg.size);
    if (cfg.test == bench::test_kind::latency)
        per_op *= 2;  // there and back
    if (cfg.test == bench::test_kind::connect)
        per_op = 64 * 1024;  // a connection costs about as much as moving this
    return per_op * static_cast<double>(cfg.count) * 1.1;
}

// More than this is refused without --force: on a quiet machine about a minute of work.
constexpr double absurd_bytes = 64.0 * (std::size_t{1} << 30);

// Where the two ends run, and what stops them, for --help.
#ifdef _WIN32
constexpr const char* ends_text = "server and client on two threads of one process";
constexpr const char* end_unit = "thread";
constexpr const char* stop_text = "Ctrl+C stops it (a Windows pipe leaves nothing behind).";
#else
constexpr const char* ends_text = "server and client in two processes";
constexpr const char* end_unit = "process";
constexpr const char* stop_text =
    "SIGINT, SIGTERM and SIGHUP stop both processes and remove the benchmark's socket.";
#endif

}  // namespace

void add_bench_command(CLI::App& app) {
    struct options {
        std::string test, size, count, bytes, buffer_size, remote;
        int clients = 1, rounds = 5, cpu_server = -1, cpu_client = -1, spin_us = 0;
        bool message = false, json = false, coalesce = false, force = false, shm = false;
        bool versus_raw = false;
        std::size_t block = 1;
    };
    auto o = std::make_shared<options>();
    auto* cmd = app.add_subcommand(
        "bench",
        std::string("Measure npipe's named pipes (") + ends_text +
            "): round-trip latency, one-way throughput, messages/s or connections/s. "
            "bench/run.sh compares the figures with raw sockets, ZeroMQ, nng, Qt and .NET on "
            "Mono.");
    cmd->footer(std::string(R"(Examples:
  npipe bench latency                       10000 round trips of 64 bytes
  npipe bench throughput --bytes 4G         4 GiB in writes of 64 KiB
  npipe bench messages --message --coalesce --json
)") + stop_text);
    cmd->add_option("test", o->test, "latency | throughput | messages | connect")
        ->required()
        ->check(CLI::IsMember({"latency", "throughput", "messages", "connect"}));
    cmd->add_option("--size", o->size,
                    "Bytes per ping, write or message (K, M, G suffixes; default: 64 for "
                    "latency and messages, 64K for throughput)");
    auto* count = cmd->add_option(
        "--count", o->count,
        "How many operations: round trips, writes of --size, messages or connections; a plain "
        "number, not bytes (default: 10000 round trips, 1 GiB of writes, 1M messages, 2000 "
        "connections)");
    cmd->add_option("--bytes", o->bytes,
                    "Data to move instead of --count: the count becomes SIZE / --size "
                    "(latency, throughput, messages) [SIZE: bytes, or with K, M or G]")
        ->excludes(count);
    cmd->add_flag("--force", o->force,
                  "Run even when the run would move more than 64 GiB (it would take minutes to "
                  "hours)");
    cmd->add_option("--clients", o->clients, "Concurrent connections sharing the count")
        ->check(CLI::Range(1, 254));
    cmd->add_option("--rounds", o->rounds, "Timed rounds for rates; the median is reported")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--buffer-size", o->buffer_size,
                    "Kernel buffer size for both ends (the in/out buffer size options) [SIZE: "
                    "bytes, or with K, M or G]");
    cmd->add_option("--cpu-server", o->cpu_server,
                    std::string("Pin the server ") + end_unit + " to this CPU")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--cpu-client", o->cpu_client,
                    std::string("Pin the client ") + end_unit + " to this CPU")
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--message", o->message, "Use message mode (transmission_mode::message)");
    cmd->add_flag("--coalesce", o->coalesce,
                  "Message mode: coalesce messages into 64 KiB sends "
                  "(pipe_options::coalesce_messages)");
    cmd->add_option("--spin-us", o->spin_us,
                    "Poll this many microseconds before a read blocks "
                    "(pipe_options::spin_before_block)")
        ->check(CLI::Range(0, 1000000));
    auto* shm = add_shared_memory_flag(cmd, o->shm);
    cmd->add_option("--remote", o->remote,
                    "Go through a TLS gateway (npipe::gateway on 127.0.0.1, in the server "
                    "process) as a remote client does; the directory holds ca.pem, gateway.pem "
                    "and gateway.key (a certificate for IP 127.0.0.1 signed by ca.pem)")
        ->excludes(shm);
#ifndef _WIN32
    auto* versus = cmd->add_flag(
        "--versus-raw", o->versus_raw,
        "Latency of npipe and of raw Unix socket syscalls (read/send on a SOCK_STREAM socket) "
        "together: the client alternates between a connection of each, --block round trips "
        "at a time, so both meet the same machine state; prints both and their ratio");
    versus->excludes(shm)->excludes("--message")->excludes("--remote")->excludes("--clients");
    cmd->add_option("--block", o->block,
                    "With --versus-raw: round trips per turn (default 1: the systems take turns "
                    "every round trip)")
        ->check(CLI::Range(1, 1000000))
        ->needs(versus);
#endif
    cmd->add_flag("--json", o->json, "Print the figures as one JSON object on one line");
    add_verbosity_flags(cmd);
    cmd->callback([o] {
        try {
            if (o->message && !have_message_mode())
                throw exit_request{2,
                                   "bench --message: message mode "
                                   "(npipe::transmission_mode::message) is not implemented in "
                                   "this build yet; run without --message for byte mode"};
#ifdef _WIN32
            if (o->shm)
                throw exit_request{2,
                                   "bench --shared-memory is for Unix sockets and not available "
                                   "on Windows"};
#endif
            bench::config cfg;
            cfg.test = *bench::parse_test(o->test);
            cfg.system = std::string(o->message ? "npipe-message" : "npipe") +
                         (o->remote.empty() ? "" : "-remote") + (o->shm ? "-shm" : "");
            cfg.size = o->size.empty() ? 0 : parse_size("--size", o->size);
            cfg.count = o->count.empty() ? 0 : parse_size("--count", o->count);
            if (!o->bytes.empty()) {
                if (cfg.test == bench::test_kind::connect)
                    throw exit_request{2,
                                       "bench connect: --bytes does not apply (a connection "
                                       "moves one byte each way); use --count"};
                cfg.apply_defaults();
                cfg.count = std::max<std::size_t>(1, parse_size("--bytes", o->bytes) / cfg.size);
            }
            cfg.buffer_size =
                o->buffer_size.empty() ? 0 : parse_size("--buffer-size", o->buffer_size);
            cfg.clients = o->clients;
            cfg.rounds = o->rounds;
            cfg.cpu_server = o->cpu_server;
            cfg.cpu_client = o->cpu_client;
            cfg.json = o->json;
            bench::config planned = cfg;
            planned.apply_defaults();
            if (!o->force && bytes_in_run(planned) > absurd_bytes)
                throw exit_request{2, "bench: this run would move about " +
                                          format_bytes(bytes_in_run(planned)) + " (" +
                                          std::to_string(planned.count) + " operations of " +
                                          format_bytes(static_cast<double>(planned.size)) +
                                          "), minutes to hours of work; use --bytes or a "
                                          "smaller --count, or --force"};
            npipe_transport t(o->message, tuning{o->coalesce, o->spin_us, o->shm},
                              remote_setup{o->remote, {}});
#ifndef _WIN32
            if (o->versus_raw) {
                if (cfg.test != bench::test_kind::latency)
                    throw exit_request{2, "bench --versus-raw measures latency only"};
                auto raw = bench::make_unix_socket_transport(false);
                bench::print(
                    bench::run_alternating(t, cfg.system, *raw, "uds-stream", cfg, o->block),
                    std::cout);
                return;
            }
#endif
            bench::result result;
            {
                progress_line progress([](double seconds) {
                    double moved = static_cast<double>(bytes_moved.load());
                    return "npipe bench: " + format_bytes(moved) + " moved in " +
                           std::to_string(static_cast<int>(seconds)) + " s, " +
                           format_bytes(moved / seconds) + "/s";
                });
                counting_bytes = progress.active();
                result = bench::run(t, cfg);
            }
            bench::print(result, std::cout);
        } catch (const bench::bench_error& e) {
            throw exit_request{1, std::string("bench: ") + e.what()};
        }
    });
}

}  // namespace npipe::cli
