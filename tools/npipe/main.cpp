// npipe: netcat for named pipes, wire-compatible with .NET. See README.md.
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "npipe/errors.hpp"

namespace npipe::cli {

child_process spawn_command(const std::vector<std::string>& argv, process_options options) {
    try {
        return spawn(argv, std::move(options));
    } catch (const pipe_error& e) {
        throw exit_request{e.code() == std::errc::no_such_file_or_directory ? 127 : 126, e.what()};
    }
}

}  // namespace npipe::cli

int main(int argc, char** argv) {
    // A peer that goes away must surface as an error message, never kill us. The library never
    // raises SIGPIPE itself; this covers our own writes to stdout (e.g. `npipe ... | head`).
    ::signal(SIGPIPE, SIG_IGN);

    CLI::App app{"npipe: named and anonymous pipes, wire-compatible with .NET's System.IO.Pipes"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "npipe 0.1.0");
    npipe::cli::add_demo_command(app);
    npipe::cli::add_serve_command(app);
    npipe::cli::add_connect_command(app);
    npipe::cli::add_list_command(app);
    npipe::cli::add_anon_command(app);
    npipe::cli::add_chat_command(app);
    npipe::cli::add_gateway_command(app);
    npipe::cli::add_bench_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const npipe::cli::exit_request& e) {
        if (!e.message.empty())
            std::cerr << "npipe: " << e.message << '\n';
        return e.code;
    } catch (const std::system_error& e) {
        std::cerr << "npipe: " << e.what() << '\n';
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "npipe: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
