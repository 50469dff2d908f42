// npipe: netcat for named pipes, wire-compatible with .NET. See README.md.
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#else
#include <signal.h>
#endif

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "npipe/errors.hpp"
#include "relay.hpp"

namespace npipe::cli {

child_process spawn_command(const std::vector<std::string>& argv, process_options options) {
    try {
        return spawn(argv, std::move(options));
    } catch (const pipe_error& e) {
        throw exit_request{e.code() == std::errc::no_such_file_or_directory ? 127 : 126, e.what()};
    }
}

namespace {

// The features this build was configured without, for --help.
std::string missing_features() {
    std::string missing;
#ifdef _WIN32
    missing +=
        "\n  on Windows (npipe.exe): "
        "`bench --shared-memory`; `serve`'s --mode, --group, --allow-uid, "
        "--allow-gid and "
        "--shared-memory (Unix sockets only); `list --all` and `--clean` (no socket files)";
#endif
#ifndef NPIPE_HAVE_REMOTE
    missing +=
        "\n  remote pipes over TLS: `npipe gateway`, `connect --server HOST[:PORT]`, "
        "`bench --remote`, `rpc call|notify --server HOST` (configured with "
        "NPIPE_BUILD_REMOTE=OFF)";
#endif
#ifndef NPIPE_HAVE_RPC
    missing += "\n  JSON-RPC: `npipe rpc` (configured with NPIPE_BUILD_RPC=OFF)";
#endif
#ifndef NPIPE_HAVE_ASIO
    missing += "\n  the async echo server: `serve --echo` (configured with NPIPE_BUILD_ASIO=OFF)";
#endif
    return missing.empty() ? "" : "\n\nThis build lacks:" + missing;
}

const char* const general_help = R"(
Exit status: 0 success; 1 runtime error (no server, a transfer that did not complete, an
I/O error; the reason is one line on stderr); 2 usage error (unknown subcommand or flag, bad
value); 130 interrupted by SIGINT (128+N for signal N); with `serve -- CMD --once` and `anon`,
CMD's own status (127: not found, 126: not startable).

Durations (--timeout, --idle-timeout, --write-timeout, --dead-peer-timeout) take units: 500ms,
2s, 1.5m, 1h; a bare number keeps each flag's historical unit (milliseconds for --timeout,
seconds for the others). Negative values are refused. Sizes take K, M and G (KiB, MiB, GiB).

Signals: SIGINT, SIGTERM and SIGHUP end every command that creates a socket, which removes its
socket file first (on Windows: Ctrl+C and Ctrl+Break). stdout is for data, stderr for messages;
on Windows stdin and stdout are binary (no line-ending translation; stderr's lines end in CRLF).

Examples:
  npipe serve backup > copy.tar              receive a file ...
  npipe connect backup < file.tar            ... sent from another terminal
  npipe serve date --max-instances 4 -- date inetd: run `date` for every client
  npipe list                                 the pipes on this machine
Run `npipe SUBCOMMAND --help` for each subcommand's flags and examples.)";

// Edit distance, for "did you mean".
std::size_t distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = up;
        }
    }
    return row[b.size()];
}

// "unknown subcommand 'sreve' (did you mean 'serve'?)" when argv names a subcommand that does
// not exist where one is required; CLI11 would call it an extra argument.
std::optional<std::string> unknown_subcommand(CLI::App& app, int argc, char** argv) {
    CLI::App* current = &app;
    std::string path = "npipe";
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.empty() || arg[0] == '-')
            return std::nullopt;
        auto subs = current->get_subcommands([](const CLI::App*) { return true; });
        if (subs.empty())
            return std::nullopt;
        auto found = std::find_if(subs.begin(), subs.end(),
                                  [&](const CLI::App* s) { return s->get_name() == arg; });
        if (found != subs.end()) {
            current = *found;
            path += " " + arg;
            continue;
        }
        if (current->get_require_subcommand_min() == 0)
            return std::nullopt;
        std::string best;
        std::size_t best_distance = 3;
        for (auto* s : subs) {
            auto d = distance(arg, s->get_name());
            if (d < best_distance || s->get_name().starts_with(arg)) {
                best = s->get_name();
                best_distance = std::min(d, best_distance);
            }
        }
        std::string names;
        for (auto* s : subs)
            names += (names.empty() ? "" : ", ") + s->get_name();
        return "unknown subcommand '" + arg + "' for " + path +
               (best.empty() ? " (one of: " + names + ")" : " (did you mean '" + best + "'?)");
    }
    return std::nullopt;
}

// One line: CLI11's multi-line texts joined, and a phrase repeated after ": " said once
// ("Connection refused: Connection refused").
std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    while (!text.empty() && text.back() == ' ')
        text.pop_back();
    for (std::size_t pos = 0; (pos = text.find(": ", pos)) != std::string::npos; pos += 2) {
        auto next = text.find(": ", pos + 2);
        auto tail = text.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
        auto head_start = text.rfind(": ", pos - 1);
        head_start = head_start == std::string::npos || pos == 0 ? 0 : head_start + 2;
        if (!tail.empty() && text.compare(head_start, pos - head_start, tail) == 0) {
            text.erase(pos, 2 + tail.size());
            pos = head_start;
        }
    }
    return text;
}

}  // namespace
}  // namespace npipe::cli

int main(int argc, char** argv) {
    using namespace npipe::cli;
    // A peer that goes away must surface as an error message, never kill us. The library never
    // raises SIGPIPE itself; this covers our own writes to stdout (e.g. `npipe ... | head`).
#ifdef _WIN32
    // Bytes pass intact: the C runtime's text mode would turn \n into \r\n and stop at ^Z.
    ::_setmode(_fileno(stdin), _O_BINARY);
    ::_setmode(_fileno(stdout), _O_BINARY);
#else
    ::signal(SIGPIPE, SIG_IGN);
#endif

    CLI::App app{"npipe: named and anonymous pipes, wire-compatible with .NET's System.IO.Pipes"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "npipe 0.1.0");
    add_verbosity_flags(&app);
    app.footer(std::string(general_help) + missing_features());
    add_demo_command(app);
    add_serve_command(app);
    add_connect_command(app);
    add_list_command(app);
    add_anon_command(app);
    add_chat_command(app);
#ifdef NPIPE_HAVE_REMOTE
    add_gateway_command(app);
#endif
    add_bench_command(app);
#ifdef NPIPE_HAVE_RPC
    add_rpc_command(app);
#endif
#ifndef _WIN32
    // serve.cpp defines serve's flags; its examples live with the others' help texts here.
    app.get_subcommand("serve")->footer(R"(Examples:
  npipe serve backup > copy.tar             receive one client's data into a file
  npipe serve clock --max-instances 4 -- date
                                            inetd: run `date` for every client, 4 at a time
  npipe serve echo --echo --idle-timeout 30s
                                            an echo server for any number of clients
  npipe serve app --mode 660 --group staff --allow-gid staff -- ./handler

Exit status: 0 when the transfer completed; 1 when it did not (the client went away, our
output was closed, a timeout) with the reason on stderr; with --once, CMD's status.)");
#endif

    if (auto unknown = unknown_subcommand(app, argc, argv)) {
        std::cerr << "npipe: " << *unknown << '\n';
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "npipe: " << one_line(e.what()) << " (see --help)\n";
        return 2;
    } catch (const exit_request& e) {
        if (!e.message.empty())
            std::cerr << "npipe: " << one_line(e.message) << '\n';
        return e.code;
    } catch (const std::exception& e) {
        std::cerr << "npipe: " << one_line(e.what()) << '\n';
        return 1;
    }
    return 0;
}
