// `npipe gateway`: exposes local pipes to other machines over TLS 1.3 (npipe::remote).
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "flags.hpp"
#include "ids.hpp"
#include "npipe/gateway.hpp"
#include "npipe/printable.hpp"
#include "npipe/remote_options.hpp"
#include "remote_flags.hpp"

namespace npipe::cli {

void add_remote_client_flags(CLI::App* cmd, remote_client_flags& flags) {
    cmd->add_option("--ca", flags.ca_file,
                    "Remote pipes: the CA that signed the gateway's certificate (PEM; default: "
                    "the system's)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--cert", flags.cert_file, "Remote pipes: our client certificate (PEM)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--key", flags.key_file, "Remote pipes: our client certificate's key (PEM)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--token-file", flags.token_file,
                    "Remote pipes: a file holding the gateway's shared token")
        ->check(CLI::ExistingFile);
    add_duration_option(cmd, "--dead-peer-timeout", flags.dead_peer_timeout, bare_unit::seconds,
                        "Remote pipes: fail after about this long when the network to the "
                        "gateway vanishes (default 30s)");
}

void apply_remote_client_flags(const remote_client_flags& flags, std::string& server,
                               std::string& name, pipe_options& options) {
    // Windows' spelling, \\HOST\pipe\NAME, with forward slashes.
    if (name.rfind("//", 0) == 0) {
        auto slash = name.find('/', 2);
        constexpr std::string_view marker = "/pipe/";
        if (slash == std::string::npos || name.compare(slash, marker.size(), marker) != 0 ||
            name.size() == slash + marker.size())
            throw exit_request{2, "connect: '" + name + "' is not //HOST/pipe/NAME"};
        server = name.substr(2, slash - 2);
        name = name.substr(slash + marker.size());
    }
    if (server == "." || server == "localhost") {
        for (auto* given : {&flags.ca_file, &flags.cert_file, &flags.key_file, &flags.token_file})
            if (!given->empty())
                throw exit_request{2,
                                   "connect: --ca, --cert, --key and --token-file are for "
                                   "remote pipes: give --server HOST[:PORT] too"};
        return;
    }
    auto tls = std::make_shared<remote_options>();
    tls->ca_file = flags.ca_file;
    tls->cert_file = flags.cert_file;
    tls->key_file = flags.key_file;
    if (!flags.token_file.empty())
        tls->token = read_token_file(flags.token_file);
    tls->dead_peer_timeout = flags.dead_peer_timeout;
    options.remote = std::move(tls);
}

namespace {

// Every connection costs a descriptor, and a handshake cap is only as good as the descriptors
// behind it: take all the hard limit allows, as the echo server does.
void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// The start-up line: where clients reach us, what they may open, how they prove who they are.
std::string startup_line(const gateway_options& options, std::uint16_t port) {
    std::string line = "npipe gateway: listening on port " + std::to_string(port) + " (" +
                       options.listen.substr(0, options.listen.rfind(':')) + ":" +
                       std::to_string(port) + "); exposing";
    for (std::size_t i = 0; i < options.allow.size(); ++i)
        line += (i ? ", '" : " '") + printable(options.allow[i]) + "'";
    line += "; clients need ";
    if (!options.client_ca_file.empty())
        line += "a certificate from " + options.client_ca_file;
    if (!options.client_ca_file.empty() && !options.token.empty())
        line += " and ";
    if (!options.token.empty())
        line += "the token";
    return line;
}

}  // namespace

void add_gateway_command(CLI::App& app) {
    static gateway_options options;
    static std::string token_file;
    static std::chrono::milliseconds dead_peer = default_dead_peer_timeout, idle{0},
                                     handshake{10'000};
    static std::vector<std::string> allow_owners;
    static bool quiet = false;
    auto* cmd = app.add_subcommand("gateway",
                                   "Expose local pipes to other machines over TLS 1.3; clients use "
                                   "`npipe connect NAME --server HOST[:PORT]`");
    cmd->add_option("--listen", options.listen, "ADDR:PORT to listen on (port 0: any free one)")
        ->capture_default_str();
    cmd->add_option("--cert", options.cert_file, "The gateway's certificate chain (PEM)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--key", options.key_file, "The certificate's private key (PEM)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--client-ca", options.client_ca_file,
                    "Require client certificates signed by this CA (mutual TLS)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--token-file", token_file,
                    "Require this shared secret (the file's content) from clients")
        ->check(CLI::ExistingFile);
    cmd->add_option("--allow", options.allow,
                    "A pipe name remote clients may open (repeat for more; at least one)");
    cmd->add_option("--allow-owner", allow_owners,
                    "Also forward to pipes whose server runs as USER (name or uid; repeat for "
                    "more; default: only the gateway's own user)");
    add_duration_option(cmd, "--handshake-timeout", handshake, bare_unit::seconds,
                        "Drop a client that has not authenticated and sent its request within "
                        "this long (default 10s)");
    cmd->add_option("--max-handshakes", options.max_handshakes,
                    "At most N clients in their handshake at once (the oldest is dropped for a "
                    "new one; 0: no limit)")
        ->capture_default_str();
    cmd->add_option("--max-handshakes-per-address", options.max_handshakes_per_address,
                    "At most N of them from one source address (0: no limit)")
        ->capture_default_str();
    add_duration_option(cmd, "--dead-peer-timeout", dead_peer, bare_unit::seconds,
                        "Drop a client whose network vanished after about this long (TCP "
                        "keepalive; default 30s)");
    add_duration_option(cmd, "--idle-timeout", idle, bare_unit::seconds,
                        "Close a connection idle both ways for this long (default 0: never)");
    cmd->add_flag("--quiet", quiet, "Do not log connections to stderr");
    cmd->callback([] {
        if (options.client_ca_file.empty() && token_file.empty())
            throw exit_request{2,
                               "gateway: give --client-ca, --token-file or both: clients "
                               "must be authenticated"};
        // A gateway that exposes nothing is a mistake, never a configuration: say so now
        // rather than refuse every client later.
        if (options.allow.empty())
            throw exit_request{2,
                               "gateway: nothing to expose: give --allow NAME for each pipe "
                               "remote clients may open"};
        if (!token_file.empty())
            options.token = read_token_file(token_file);
        if (handshake.count() <= 0)
            throw exit_request{2, "gateway: --handshake-timeout must be more than 0"};
        for (const auto& user : allow_owners)
            options.allow_owners.push_back(parse_id("--allow-owner", user, user_id));
        options.handshake_timeout = handshake;
        raise_descriptor_limit();
        options.dead_peer_timeout = dead_peer;
        options.idle_timeout = idle;
        if (!quiet)
            options.log = [](std::string_view line) {
                std::cerr << "npipe gateway: " << line << std::endl;
            };
        // SIGINT and SIGTERM stop the gateway cleanly: a thread waits for them, the others
        // never see them.
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
        gateway gw(options);
        std::thread stopper([&gw, stop_signals] {
            int signal = 0;
            sigwait(&stop_signals, &signal);
            gw.stop();
        });
        // On stdout, for scripts that listen on port 0 and need to know which one.
        std::cout << startup_line(options, gw.port()) << std::endl;
        gw.run();
        // Should run() ever end without a signal, the signal wakes the waiting thread (stop()
        // is idempotent): it must not outlive the gateway it refers to.
        pthread_kill(stopper.native_handle(), SIGTERM);
        stopper.join();
    });
}

}  // namespace npipe::cli
