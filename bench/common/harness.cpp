// The measuring itself, the same on every platform: the schedules of both ends, timing,
// percentiles, the JSON and text output, the options. run() is the platform's
// (harness_posix.cpp, harness_windows.cpp).
#include "harness.hpp"

#ifndef _WIN32
#include <signal.h>
#endif

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "harness_detail.hpp"

namespace npipe::bench {

using clock = std::chrono::steady_clock;

std::optional<test_kind> parse_test(std::string_view name) {
    if (name == "latency")
        return test_kind::latency;
    if (name == "throughput")
        return test_kind::throughput;
    if (name == "messages")
        return test_kind::messages;
    if (name == "connect")
        return test_kind::connect;
    return std::nullopt;
}

std::string_view to_string(test_kind test) {
    switch (test) {
        case test_kind::latency:
            return "latency";
        case test_kind::throughput:
            return "throughput";
        case test_kind::messages:
            return "messages";
        case test_kind::connect:
            return "connect";
    }
    return "?";
}

void config::apply_defaults() {
    if (size == 0) {
        switch (test) {
            case test_kind::latency:
            case test_kind::messages:
                size = 64;
                break;
            case test_kind::throughput:
                size = 64 * 1024;
                break;
            case test_kind::connect:
                size = 1;  // one byte each way, by definition of the test
                break;
        }
    }
    if (count == 0) {
        switch (test) {
            case test_kind::latency:
                count = 10000;
                break;
            case test_kind::throughput:
                // 1 GiB in total: long enough to swamp start-up, short enough for a sweep.
                count = std::max<std::size_t>(1, (std::size_t{1} << 30) / size);
                break;
            case test_kind::messages:
                count = 1000000;
                break;
            case test_kind::connect:
                count = 2000;
                break;
        }
    }
    if (test == test_kind::connect)
        size = 1;
}

std::size_t parse_size(std::string_view text) {
    std::size_t value = 0, i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        if (value > (SIZE_MAX - 9) / 10)
            throw bench_error("size out of range: " + std::string(text));
        value = value * 10 + static_cast<std::size_t>(text[i] - '0');
    }
    if (i == 0)
        throw bench_error("not a size: '" + std::string(text) + "'");
    std::string unit(text.substr(i));
    for (auto& c : unit)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t mult = 1;
    if (unit.empty() || unit == "b")
        mult = 1;
    else if (unit == "k" || unit == "kib" || unit == "kb")
        mult = std::size_t{1} << 10;
    else if (unit == "m" || unit == "mib" || unit == "mb")
        mult = std::size_t{1} << 20;
    else if (unit == "g" || unit == "gib" || unit == "gb")
        mult = std::size_t{1} << 30;
    else
        throw bench_error("unknown size unit in '" + std::string(text) + "' (use K, M or G)");
    if (value > SIZE_MAX / mult)
        throw bench_error("size out of range: " + std::string(text));
    return value * mult;
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty())
        return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

void read_exact(connection& c, std::span<std::byte> buffer) {
    while (!buffer.empty()) {
        auto n = c.read_some(buffer);
        if (n == 0)
            throw bench_error("unexpected end of stream");
        buffer = buffer.subspan(n);
    }
}

namespace {

/// How many operations each client (and its server slot) does: the count split evenly, the
/// remainder going to the first clients.
std::size_t share_of(const config& cfg, int slot) {
    auto n = static_cast<std::size_t>(cfg.clients);
    return cfg.count / n + (static_cast<std::size_t>(slot) < cfg.count % n ? 1 : 0);
}

/// Operations in each round for one client: a warm-up round (not timed), then the timed rounds.
/// Both processes compute it from the same config, so they agree on every round boundary.
std::vector<std::size_t> schedule(const config& cfg, std::size_t share) {
    std::vector<std::size_t> rounds;
    if (cfg.test == test_kind::latency) {
        rounds.push_back(std::clamp<std::size_t>(share / 10, 1, 1000));
        rounds.push_back(share);
        return rounds;
    }
    auto n = std::max<std::size_t>(
        1, std::min<std::size_t>(share, static_cast<std::size_t>(cfg.rounds)));
    if (cfg.test == test_kind::connect)
        rounds.push_back(std::clamp<std::size_t>(share / 10, 1, 100));
    else
        rounds.push_back(std::max<std::size_t>(1, share / n / 2));
    for (std::size_t i = 0; i < n; ++i)
        rounds.push_back(share / n + (i < share % n ? 1 : 0));
    return rounds;
}

/// The receive buffer for one-way transfers: a consumer reads as much as it can take at once.
std::size_t receive_buffer_size(const config& cfg) {
    return std::max<std::size_t>(cfg.size, 64 * 1024);
}

/// Receives `n` writes of cfg.size bytes: n messages on a message transport, n*size bytes on a
/// stream (however the reads split them).
void receive_writes(connection& c, bool messages, const config& cfg, std::size_t n,
                    std::vector<std::byte>& buf) {
    if (messages) {
        for (std::size_t i = 0; i < n; ++i) {
            auto got = c.read_some(buf);
            if (got != cfg.size)
                throw bench_error("received a message of " + std::to_string(got) +
                                  " bytes, expected " + std::to_string(cfg.size));
        }
        return;
    }
    std::size_t remaining = n * cfg.size;
    while (remaining > 0) {
        auto got = c.read_some(std::span(buf).first(std::min(remaining, buf.size())));
        if (got == 0)
            throw bench_error("unexpected end of stream");
        remaining -= got;
    }
}

/// Receives one ping (exactly cfg.size bytes, or one message of that size).
void receive_one(connection& c, bool messages, std::span<std::byte> buf) {
    if (messages) {
        auto got = c.read_some(buf);
        if (got != buf.size())
            throw bench_error("received a message of " + std::to_string(got) + " bytes, expected " +
                              std::to_string(buf.size()));
    } else {
        read_exact(c, buf);
    }
}

}  // namespace

namespace detail {

void serve_slot(transport& t, listener& l, const config& cfg, int slot) {
    const bool messages = t.message_oriented();
    auto rounds = schedule(cfg, share_of(cfg, slot));
    std::byte ack{1};
    switch (cfg.test) {
        case test_kind::latency: {
            auto c = l.accept(slot);
            std::vector<std::byte> buf(cfg.size);
            for (auto n : rounds)
                for (std::size_t i = 0; i < n; ++i) {
                    receive_one(*c, messages, buf);
                    c->write_all(buf);
                }
            break;
        }
        case test_kind::throughput:
        case test_kind::messages: {
            auto c = l.accept(slot);
            std::vector<std::byte> buf(receive_buffer_size(cfg));
            for (auto n : rounds) {
                receive_writes(*c, messages, cfg, n, buf);
                c->write_all(std::span(&ack, 1));
            }
            break;
        }
        case test_kind::connect: {
            std::byte b{};
            for (auto n : rounds)
                for (std::size_t i = 0; i < n; ++i) {
                    auto c = l.accept(slot);
                    receive_one(*c, messages, std::span(&b, 1));
                    c->write_all(std::span(&ack, 1));
                }
            break;
        }
    }
}

[[noreturn]] void die(const char* who, const char* what) {
    std::fprintf(stderr, "%s: %s\n", who, what);
    std::fflush(stderr);
    std::_Exit(1);
}

config prepared(const config& cfg_in) {
    config cfg = cfg_in;
    cfg.apply_defaults();
    if (cfg.clients < 1)
        throw bench_error("--clients must be at least 1");
    if (cfg.rounds < 1)
        throw bench_error("--rounds must be at least 1");
    if (cfg.size == 0 || cfg.count == 0)
        throw bench_error("--size and --count must be positive");
    if (cfg.count < static_cast<std::size_t>(cfg.clients))
        throw bench_error("--count must be at least --clients");
    return cfg;
}

/// Every operation of the run, warm-up included: what the CPU times are divided by.
std::size_t total_operations(const config& cfg) {
    std::size_t ops = 0;
    for (int slot = 0; slot < cfg.clients; ++slot)
        for (auto n : schedule(cfg, share_of(cfg, slot)))
            ops += n;
    return ops;
}

void set_latency_figures(result& r, std::vector<double> round_trips_us) {
    if (round_trips_us.empty())
        throw bench_error("no round trip was timed");
    auto& all = round_trips_us;
    std::sort(all.begin(), all.end());
    r.samples = all.size();
    r.median_us = percentile(all, 50);
    r.p99_us = percentile(all, 99);
    r.p999_us = percentile(all, 99.9);
    r.min_us = all.front();
    r.max_us = all.back();
    double sum = 0;
    for (double v : all)
        sum += v;
    r.mean_us = sum / static_cast<double>(all.size());
}

result run_client(transport& t, const config& cfg, const std::string& endpoint,
                  double* cpu_seconds) {
    result r;
    double cpu = 0;
    r.cfg = cfg;
    const bool messages = t.message_oriented();
    std::vector<std::vector<std::size_t>> plans;
    for (int slot = 0; slot < cfg.clients; ++slot)
        plans.push_back(schedule(cfg, share_of(cfg, slot)));

    if (cfg.test == test_kind::latency) {
        std::vector<std::vector<double>> samples(static_cast<std::size_t>(cfg.clients));
        cpu = for_each_slot(cfg.clients, cfg.cpu_client, "client", [&](int slot) {
            auto& mine = samples[static_cast<std::size_t>(slot)];
            auto& plan = plans[static_cast<std::size_t>(slot)];
            auto c = t.connect(endpoint, cfg);
            std::vector<std::byte> out(cfg.size, std::byte{0x5a}), in(cfg.size);
            for (std::size_t i = 0; i < plan[0]; ++i) {
                c->write_all(out);
                receive_one(*c, messages, in);
            }
            mine.reserve(plan[1]);
            for (std::size_t i = 0; i < plan[1]; ++i) {
                auto t0 = clock::now();
                c->write_all(out);
                receive_one(*c, messages, in);
                auto t1 = clock::now();
                mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
            }
        });
        for (auto& s : samples)
            r.round_trips_us.insert(r.round_trips_us.end(), s.begin(), s.end());
        set_latency_figures(r, r.round_trips_us);
    } else {
        // Rounds are timed across all clients together: a barrier starts each one, and the
        // round ends when the last client has its acknowledgement (or its last connection).
        const std::size_t n_rounds = plans[0].size();
        std::vector<clock::time_point> marks;
        marks.reserve(2 * n_rounds + 2);
        std::barrier sync(cfg.clients, [&marks]() noexcept { marks.push_back(clock::now()); });
        const std::size_t unit_bytes = cfg.test == test_kind::throughput ? cfg.size : 1;
        cpu = for_each_slot(cfg.clients, cfg.cpu_client, "client", [&](int slot) {
            auto& plan = plans[static_cast<std::size_t>(slot)];
            std::byte b{0x5a};
            if (cfg.test == test_kind::connect) {
                for (auto n : plan) {
                    sync.arrive_and_wait();
                    for (std::size_t i = 0; i < n; ++i) {
                        auto c = t.connect(endpoint, cfg);
                        c->write_all(std::span(&b, 1));
                        receive_one(*c, messages, std::span(&b, 1));
                    }
                    sync.arrive_and_wait();
                }
                return;
            }
            auto c = t.connect(endpoint, cfg);
            std::vector<std::byte> out(cfg.size, std::byte{0x5a});
            for (auto n : plan) {
                sync.arrive_and_wait();
                for (std::size_t i = 0; i < n; ++i)
                    c->write_all(out);
                receive_one(*c, messages, std::span(&b, 1));
                sync.arrive_and_wait();
            }
        });
        // Round k's operations: the sum over clients of each plan's k-th entry.
        for (std::size_t k = 1; k < n_rounds; ++k) {
            std::size_t ops = 0;
            for (auto& plan : plans)
                ops += plan[k];
            double secs = std::chrono::duration<double>(marks[2 * k + 1] - marks[2 * k]).count();
            r.round_rates.push_back(static_cast<double>(ops * unit_bytes) / secs);
        }
        auto sorted = r.round_rates;
        std::sort(sorted.begin(), sorted.end());
        r.rate = percentile(sorted, 50);
    }
    if (cpu_seconds)
        *cpu_seconds = cpu;
    return r;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string human_size(std::size_t n) {
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        return std::to_string(n >> 20) + " MiB";
    if (n >= 1024 && n % 1024 == 0)
        return std::to_string(n >> 10) + " KiB";
    return std::to_string(n) + " B";
}

std::string placement(const config& c) {
    auto cpu = [](int n) { return n < 0 ? std::string("any CPU") : "CPU " + std::to_string(n); };
    return "server on " + cpu(c.cpu_server) + ", client on " + cpu(c.cpu_client);
}

}  // namespace detail

void print(const result& r, std::ostream& out) {
    using namespace detail;
    const auto& c = r.cfg;
    // Rates in the unit the JSON key names: GB/s (10^9 bytes) or per second.
    double scale = c.test == test_kind::throughput ? 1e-9 : 1.0;
    if (c.json) {
        std::ostringstream j;
        j << "{\"system\":" << json_string(c.system)
          << ",\"test\":" << json_string(to_string(c.test)) << ",\"size\":" << c.size
          << ",\"count\":" << c.count << ",\"clients\":" << c.clients
          << ",\"cpu_server\":" << c.cpu_server << ",\"cpu_client\":" << c.cpu_client
          << ",\"buffer_size\":" << c.buffer_size;
        if (c.test == test_kind::latency) {
            j << ",\"median_us\":" << fmt("%.3f", r.median_us)
              << ",\"p99_us\":" << fmt("%.3f", r.p99_us)
              << ",\"p999_us\":" << fmt("%.3f", r.p999_us)
              << ",\"mean_us\":" << fmt("%.3f", r.mean_us)
              << ",\"min_us\":" << fmt("%.3f", r.min_us) << ",\"max_us\":" << fmt("%.3f", r.max_us);
        } else {
            const char* key = c.test == test_kind::throughput ? "gbps"
                              : c.test == test_kind::messages ? "msgs_per_s"
                                                              : "conns_per_s";
            const char* f = c.test == test_kind::throughput ? "%.4f" : "%.1f";
            j << ",\"" << key << "\":" << fmt(f, r.rate * scale) << ",\"rounds\":[";
            for (std::size_t i = 0; i < r.round_rates.size(); ++i)
                j << (i ? "," : "") << fmt(f, r.round_rates[i] * scale);
            j << "]";
        }
        if (r.cpu_client_us >= 0)
            j << ",\"cpu_client_us\":" << fmt("%.3f", r.cpu_client_us)
              << ",\"cpu_server_us\":" << fmt("%.3f", r.cpu_server_us)
              << ",\"cpu_client_share\":" << fmt("%.3f", r.cpu_client_share)
              << ",\"cpu_server_share\":" << fmt("%.3f", r.cpu_server_share);
        j << "}\n";
        out << j.str() << std::flush;
        return;
    }
    std::ostringstream t;
    t << c.system << ' ' << to_string(c.test) << ": ";
    switch (c.test) {
        case test_kind::latency:
            t << r.samples << " round trips of " << human_size(c.size);
            break;
        case test_kind::throughput:
            t << c.count << " writes of " << human_size(c.size);
            break;
        case test_kind::messages:
            t << c.count << " messages of " << human_size(c.size) << " one way";
            break;
        case test_kind::connect:
            t << c.count << " connections (connect, one byte each way, close)";
            break;
    }
    t << ", " << c.clients << (c.clients == 1 ? " client, " : " clients, ") << placement(c);
    if (c.buffer_size)
        t << ", " << human_size(c.buffer_size) << " buffers";
    t << "\n  ";
    if (c.test == test_kind::latency) {
        t << "median " << fmt("%.2f", r.median_us) << " us   p99 " << fmt("%.2f", r.p99_us)
          << " us   p99.9 " << fmt("%.2f", r.p999_us) << " us   (mean " << fmt("%.2f", r.mean_us)
          << ", min " << fmt("%.2f", r.min_us) << ", max " << fmt("%.2f", r.max_us) << ")\n";
    } else {
        const char* unit = c.test == test_kind::throughput ? " GB/s"
                           : c.test == test_kind::messages ? " messages/s"
                                                           : " connections/s";
        const char* f = c.test == test_kind::throughput ? "%.3f" : "%.0f";
        t << fmt(f, r.rate * scale) << unit << " (median of " << r.round_rates.size() << " rounds:";
        for (double v : r.round_rates)
            t << ' ' << fmt(f, v * scale);
        t << ")\n";
    }
    if (r.cpu_client_us >= 0) {
        const char* per = c.test == test_kind::latency      ? "round trip"
                          : c.test == test_kind::throughput ? "write"
                          : c.test == test_kind::messages   ? "message"
                                                            : "connection";
        t << "  CPU per " << per << ": client " << fmt("%.2f", r.cpu_client_us) << " us, server "
          << fmt("%.2f", r.cpu_server_us) << " us (" << fmt("%.0f", r.cpu_client_share * 100)
          << " % and " << fmt("%.0f", r.cpu_server_share * 100) << " % of a CPU)\n";
    }
    out << t.str() << std::flush;
}

config parse_args(std::span<char* const> args, std::string system) {
    static const char* usage =
        "usage: TEST [--size BYTES] [--count N] [--clients N] [--rounds N] [--buffer-size BYTES]"
        " [--cpu-server N] [--cpu-client N] [--json]\n  TEST: latency, throughput, messages or"
        " connect; sizes take K, M or G suffixes";
    config cfg;
    cfg.system = std::move(system);
    bool have_test = false;
    auto number = [](std::string_view opt, std::string_view v) {
        char* end = nullptr;
        std::string s(v);
        long n = std::strtol(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || n < -1 || n > 1000000000)
            throw bench_error(std::string(opt) + ": not a number: '" + s + "'");
        return n;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "--help" || a == "-h")
            throw bench_error(usage);
        if (a == "--json") {
            cfg.json = true;
            continue;
        }
        if (a.starts_with("--")) {
            std::string_view value;
            auto eq = a.find('=');
            std::string_view opt = a.substr(0, eq);
            if (eq != std::string_view::npos) {
                value = a.substr(eq + 1);
            } else {
                if (i + 1 >= args.size())
                    throw bench_error(std::string(opt) + " needs a value\n" + usage);
                value = args[++i];
            }
            if (opt == "--size")
                cfg.size = parse_size(value);
            else if (opt == "--count")
                cfg.count = parse_size(value);
            else if (opt == "--buffer-size")
                cfg.buffer_size = parse_size(value);
            else if (opt == "--clients")
                cfg.clients = static_cast<int>(number(opt, value));
            else if (opt == "--rounds")
                cfg.rounds = static_cast<int>(number(opt, value));
            else if (opt == "--cpu-server")
                cfg.cpu_server = static_cast<int>(number(opt, value));
            else if (opt == "--cpu-client")
                cfg.cpu_client = static_cast<int>(number(opt, value));
            else
                throw bench_error("unknown option " + std::string(opt) + "\n" + usage);
            continue;
        }
        auto test = parse_test(a);
        if (!test || have_test)
            throw bench_error("unexpected argument '" + std::string(a) + "'\n" + usage);
        cfg.test = *test;
        have_test = true;
    }
    if (!have_test)
        throw bench_error(std::string("no test given\n") + usage);
    return cfg;
}

int run_main(int argc, char** argv, std::string system, transport& t) {
    const std::string prog = system;
#ifndef _WIN32
    // A peer that dies must show up as a failed write with a message, not a silent exit.
    ::signal(SIGPIPE, SIG_IGN);
#endif
    try {
        auto cfg =
            parse_args(std::span(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)),
                       std::move(system));
        print(run(t, cfg), std::cout);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << prog << ": " << e.what() << '\n';
        return 1;
    }
}

}  // namespace npipe::bench
