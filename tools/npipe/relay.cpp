#include "relay.hpp"

#ifdef _WIN32
#include <io.h>
#include <windows.h>
#else
#include <unistd.h>
#endif

#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "flags.hpp"

namespace npipe::cli {

verbosity output_level = verbosity::normal;

void add_verbosity_flags(CLI::App* cmd) {
    cmd->add_flag_callback(
        "-q,--quiet", [] { output_level = verbosity::quiet; },
        "Print only errors on stderr (no waiting note, no progress line)");
    cmd->add_flag_callback(
        "-v,--verbose", [] { output_level = verbosity::verbose; },
        "Also say what moved when a transfer ends");
}

progress_line::progress_line(std::function<std::string(double seconds)> line)
    : line_(std::move(line)) {
    if (output_level == verbosity::quiet || !::isatty(2))
        return;
    thread_ = std::thread([this] { run(); });
}

progress_line::~progress_line() {
    if (!thread_.joinable())
        return;
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
    if (shown_)
        std::fputs("\r\033[K", stderr);
}

void progress_line::run() {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (seconds < 1.5)
            continue;  // short transfers show nothing
        std::fprintf(stderr, "\r\033[K%s", line_(seconds).c_str());
        std::fflush(stderr);
        shown_ = true;
    }
}

int relay_stdio(pipe_stream& pipe, const relay_options& options, std::vector<std::byte>* carry,
                relay_result* result) {
    relay_counters counters;
    relay_options with_counters = options;
    with_counters.counters = &counters;
    relay_result r;
    {
        progress_line progress([&counters](double seconds) {
            double sent = static_cast<double>(counters.sent.load());
            double received = static_cast<double>(counters.received.load());
            return format_bytes(sent) + " sent, " + format_bytes(received) + " received, " +
                   format_bytes((sent + received) / seconds) + "/s";
        });
#ifdef _WIN32
        r = relay(pipe, ::GetStdHandle(STD_INPUT_HANDLE), ::GetStdHandle(STD_OUTPUT_HANDLE),
                  with_counters, carry);
#else
        r = relay(pipe, 0, 1, with_counters, carry);
#endif
    }
    if (result)
        *result = r;
    if (output_level == verbosity::verbose)
        std::cerr << "npipe: pipe '" << pipe.pipe_name() << "': " << r.bytes_sent << " bytes sent, "
                  << r.bytes_received << " received\n";
    switch (r.end) {
        case relay_end::completed:
        case relay_end::cancelled:  // whoever closed the pipe says why
            return r.end == relay_end::completed ? 0 : 1;
        case relay_end::peer_closed:
            if (!r.input_ended && ::isatty(0)) {
                if (output_level != verbosity::quiet)
                    std::cerr << "npipe: pipe '" << pipe.pipe_name()
                              << "': the peer closed the pipe\n";
                return 0;
            }
            break;
        default:
            break;
    }
    if (carry && r.end == relay_end::peer_closed)
        return 1;  // the caller reconnects and says so
    std::cerr << "npipe: " << r.describe(pipe.pipe_name(), options);
    if (r.end == relay_end::peer_closed && r.bytes_received == 0)
        // What a client refused by the server's --allow-uid / --allow-gid sees: the server
        // closes the connection before a byte moves (the refusal itself is not on the wire).
        std::cerr << "; it sent nothing (a server's --allow-uid/--allow-gid refuses that way)";
    std::cerr << '\n';
    return 1;
}

}  // namespace npipe::cli
