// A handler that runs a program per request, its stdin/stdout/stderr on anonymous pipes.
#include "npipe/rpc/command_handler.hpp"

#include <array>
#include <mutex>
#include <stop_token>
#include <thread>

#include "npipe/anonymous_pipe.hpp"
#include "npipe/process.hpp"
#include "npipe/rpc/message.hpp"

namespace npipe::rpc {
namespace {

// Reads `pipe` to its end, keeping at most `max` bytes; false when there was more.
bool read_all(pipe_stream& pipe, std::string& out, std::size_t max) {
    std::array<std::byte, 16384> buffer;
    for (;;) {
        std::error_code ec;
        std::size_t n = pipe.read(buffer, ec);
        if (ec || n == 0)
            return true;
        if (out.size() + n > max)
            return false;
        out.append(reinterpret_cast<const char*>(buffer.data()), n);
    }
}

std::string trimmed(std::string s) {
    auto end = s.find_last_not_of(" \t\r\n");
    s.erase(end == std::string::npos ? 0 : end + 1);
    return s;
}

}  // namespace

raw_handler command_handler(std::vector<std::string> argv, std::size_t max_output) {
    return [argv = std::move(argv), max_output](const json& params, call_context& ctx) -> json {
        std::vector<std::string> args = argv;
        args.push_back(ctx.method());
        anonymous_pipe_server to_child(pipe_direction::out);
        anonymous_pipe_server from_child(pipe_direction::in);
        anonymous_pipe_server errors_of_child(pipe_direction::in);
        process_options options;
        options.stdin_fd = to_child.client_handle();
        options.stdout_fd = from_child.client_handle();
        options.stderr_fd = errors_of_child.client_handle();
        child_process child;
        try {
            child = spawn(args, options);
        } catch (const std::exception& e) {
            throw rpc_error(errc::internal_error, e.what());
        }
        to_child.dispose_local_copy_of_client_handle();
        from_child.dispose_local_copy_of_client_handle();
        errors_of_child.dispose_local_copy_of_client_handle();
        std::stop_callback kill_on_cancel(ctx.stop_token(), [&] { child.kill(9); });
        // Separate threads feed stdin and drain stderr, so a program that writes before it
        // reads (or fills stderr) cannot block against us.
        std::string input = params.is_null() ? std::string() : serialize(params);
        std::thread writer([&] {
            std::error_code ec;
            to_child.write(std::as_bytes(std::span(input.data(), input.size())), ec);
            to_child.close();
        });
        std::string err;
        bool err_fit = true;
        std::thread err_reader([&] { err_fit = read_all(errors_of_child, err, max_output); });
        std::string out;
        bool out_fit = read_all(from_child, out, max_output);
        // Past the limit, killing the child ends its pipes, and so these threads.
        if (!out_fit)
            child.kill(9);
        err_reader.join();
        if (!err_fit)
            child.kill(9);
        writer.join();
        exit_status status = child.wait();
        ctx.throw_if_cancelled();
        if (!out_fit || !err_fit)
            throw rpc_error(errc::internal_error, "output of " + argv.front() + " exceeds " +
                                                      std::to_string(max_output) + " bytes");
        if (!status.success()) {
            json data = status.exited() ? json{{"exit_code", status.code}}
                                        : json{{"signal", status.signal}};
            std::string message = trimmed(err);
            if (message.empty())
                message = argv.front() + " failed";
            throw rpc_error(errc::internal_error, message, data);
        }
        out = trimmed(out);
        if (out.empty())
            return nullptr;
        std::error_code ec;
        if (auto result = parse_document(out, ec))
            return *result;
        return out;
    };
}

}  // namespace npipe::rpc
