#include "support/test_support.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <ostream>

#include <gtest/gtest.h>

#include "npipe/pipe_name.hpp"

extern char** environ;

namespace npipe::test {

std::string unique_pipe_name(const std::string& tag) {
    static std::atomic<int> counter{0};
    return "npipe-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" + tag;
}

std::string cli() {
#ifdef NPIPE_CLI
    return NPIPE_CLI;
#else
    return "npipe";
#endif
}

struct child::shared {
    std::mutex mutex;
    std::condition_variable changed;
    std::string out, err;
};

namespace {

void pump(int fd, std::shared_ptr<child::shared> io, bool is_out) {
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        std::lock_guard lock(io->mutex);
        (is_out ? io->out : io->err).append(buffer, static_cast<std::size_t>(n));
        io->changed.notify_all();
    }
    ::close(fd);
}

}  // namespace

child::child(std::vector<std::string> argv) : child(std::move(argv), options{}) {}

child::child(std::vector<std::string> argv, options opts) : io_(std::make_shared<shared>()) {
    int in[2] = {-1, -1}, out[2], err[2];
    if (opts.capture_stdin && ::pipe2(in, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2");
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2");
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
        std::string entry = *e;
        auto key = entry.substr(0, entry.find('='));
        if (!opts.env.count(key))
            env_strings.push_back(entry);
    }
    for (auto& [k, v] : opts.env)
        env_strings.push_back(k + "=" + v);
    std::vector<char*> args, envp;
    for (auto& a : argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env_strings)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_ = ::fork();
    if (pid_ < 0)
        throw std::runtime_error("fork");
    if (pid_ == 0) {
        if (opts.capture_stdin) {
            ::dup2(in[0], 0);
        } else {
            int null = ::open("/dev/null", O_RDONLY);
            ::dup2(null, 0);
        }
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        ::signal(SIGPIPE, SIG_DFL);
        if (opts.gid) {
            ::setgroups(0, nullptr);
            if (::setgid(*opts.gid) != 0)
                ::_exit(126);
        }
        if (opts.uid && ::setuid(*opts.uid) != 0)
            ::_exit(126);
        ::execve(args[0], args.data(), envp.data());
        if (args[0][0] != '/')
            ::execvpe(args[0], args.data(), envp.data());
        ::_exit(127);
    }
    if (opts.capture_stdin) {
        ::close(in[0]);
        stdin_fd_ = in[1];
    }
    ::close(out[1]);
    ::close(err[1]);
    out_thread_ = std::thread(pump, out[0], io_, true);
    err_thread_ = std::thread(pump, err[0], io_, false);
}

child::~child() {
    if (!status_)
        kill(SIGKILL);
    close_stdin();
    if (out_thread_.joinable())
        out_thread_.join();
    if (err_thread_.joinable())
        err_thread_.join();
}

bool child::write_stdin(const std::string& data) {
    // The test process ignores nothing: a child that exits early must give EPIPE, not SIGPIPE.
    static const bool ignored = [] {
        ::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)ignored;
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(stdin_fd_, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

void child::close_stdin() {
    if (stdin_fd_ >= 0)
        ::close(stdin_fd_);
    stdin_fd_ = -1;
}

std::optional<int> child::wait(std::chrono::milliseconds timeout) {
    if (status_)
        return status_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto nap = std::chrono::milliseconds(1);
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (out_thread_.joinable())
                out_thread_.join();
            if (err_thread_.joinable())
                err_thread_.join();
            return status_;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            return std::nullopt;
        // No way to wait on a pid with a timeout short of a pidfd; a short doubling nap is fine
        // for tests and does not affect what they assert.
        std::this_thread::sleep_for(nap);
        nap = std::min(nap * 2, std::chrono::milliseconds(20));
    }
}

void child::kill(int sig) {
    if (status_ || pid_ <= 0)
        return;
    ::kill(pid_, sig);
    wait(60s);
}

std::string child::out() {
    std::lock_guard lock(io_->mutex);
    return io_->out;
}

std::string child::err() {
    std::lock_guard lock(io_->mutex);
    return io_->err;
}

bool child::wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
    std::unique_lock lock(io_->mutex);
    return io_->changed.wait_for(lock, timeout,
                                 [&] { return io_->out.find(text) != std::string::npos; });
}

bool child::wait_for_error(const std::string& text, int times, std::chrono::milliseconds timeout) {
    std::unique_lock lock(io_->mutex);
    return io_->changed.wait_for(lock, timeout, [&] { return count_of(io_->err, text) >= times; });
}

int count_of(const std::string& in, const std::string& text) {
    int n = 0;
    for (auto at = in.find(text); !text.empty() && at != std::string::npos;
         at = in.find(text, at + text.size()))
        ++n;
    return n;
}

run_result run(std::vector<std::string> argv, const std::string& input,
               std::chrono::milliseconds timeout, child::options opts) {
    child c(std::move(argv), std::move(opts));
    std::thread writer([&] {
        c.write_stdin(input);
        c.close_stdin();
    });
    auto code = c.wait(timeout);
    if (!code)
        c.kill();
    writer.join();
    return {code.value_or(-1), c.out(), c.err()};
}

bool wait_for_server(const std::string& name, std::chrono::milliseconds timeout) {
    auto path = npipe::pipe_path(name);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto nap = std::chrono::milliseconds(1);
    do {
        for (auto& p : npipe::list_pipes())
            if (p.path == path && p.live)
                return true;
        std::this_thread::sleep_for(nap);
        nap = std::min(nap * 2, std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

bool have_mono() {
    return ::access("/usr/bin/mcs", X_OK) == 0 && ::access("/usr/bin/mono", X_OK) == 0;
}

std::string csharp_program(const std::string& file) {
    static std::mutex mutex;
    std::lock_guard lock(mutex);
    std::string source = std::string(NPIPE_TEST_SOURCE_DIR) + "/interop/dotnet/" + file + ".cs";
    std::string exe = std::string(NPIPE_TEST_BINARY_DIR) + "/dotnet/" + file + ".exe";
    std::filesystem::create_directories(std::string(NPIPE_TEST_BINARY_DIR) + "/dotnet");
    std::error_code ec;
    auto src_time = std::filesystem::last_write_time(source, ec);
    if (!ec && std::filesystem::exists(exe) && std::filesystem::last_write_time(exe) >= src_time)
        return exe;
    // Test processes run in parallel (ctest -j): compile aside and rename into place, so no
    // process ever runs a half-written .exe.
    std::string partial = exe + ".tmp." + std::to_string(::getpid());
    auto r = run({"/usr/bin/mcs", "-r:System.Core", "-out:" + partial, source}, {}, 300s);
    if (r.exit_code != 0 || std::rename(partial.c_str(), exe.c_str()) != 0) {
        ADD_FAILURE() << "mcs failed for " << source << ":\n" << r.out << r.err;
        return {};
    }
    return exe;
}

std::vector<std::string> mono_command(const std::string& exe, std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/mono", exe};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

std::string runtime_name(csharp_runtime runtime) {
    return runtime == csharp_runtime::mono ? "mono" : "dotnet10";
}

void PrintTo(csharp_runtime runtime, std::ostream* os) {
    *os << runtime_name(runtime);
}

std::string runtime_missing(csharp_runtime runtime) {
    if (runtime == csharp_runtime::mono)
        return have_mono() ? "" : "mcs/mono missing";
#if defined(NPIPE_DOTNET) && defined(NPIPE_DOTNET_PEERS)
    if (::access(NPIPE_DOTNET, X_OK) != 0)
        return std::string(".NET 10 missing: ") + NPIPE_DOTNET + " is gone";
    if (::access(NPIPE_DOTNET_PEERS, R_OK) != 0)
        return std::string(".NET 10 peers not built: ") + NPIPE_DOTNET_PEERS +
               " is missing (build the csharp_peers_net10 target)";
    return "";
#else
    return ".NET 10 missing: no `dotnet` on the PATH when CMake configured the build (install the "
           ".NET 10 SDK and reconfigure)";
#endif
}

std::vector<std::string> csharp_command(csharp_runtime runtime, const std::string& program,
                                        std::vector<std::string> args) {
    std::vector<std::string> argv;
    if (runtime == csharp_runtime::mono) {
        auto exe = csharp_program(program);
        if (exe.empty())
            return {};
        return mono_command(exe, std::move(args));
    }
#if defined(NPIPE_DOTNET) && defined(NPIPE_DOTNET_PEERS)
    argv = {NPIPE_DOTNET, NPIPE_DOTNET_PEERS, program};
#else
    ADD_FAILURE() << runtime_missing(runtime);
    return {};
#endif
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

std::string transport_name(transport_kind kind) {
    return kind == transport_kind::socket ? "socket" : "shared_memory";
}

void PrintTo(transport_kind kind, std::ostream* os) {
    *os << transport_name(kind);
}

std::string pattern(std::size_t size, std::uint32_t seed) {
    std::string data(size, '\0');
    std::uint32_t x = seed ? seed : 1;
    for (auto& c : data) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return data;
}

temp_dir::temp_dir() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/npipe-test-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
        throw std::runtime_error("mkdtemp");
    path_ = tmpl;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

tmpdir_scope::tmpdir_scope() {
    if (const char* old = std::getenv("TMPDIR"))
        old_ = old;
    ::setenv("TMPDIR", dir_.path().c_str(), 1);
}

tmpdir_scope::~tmpdir_scope() {
    if (old_)
        ::setenv("TMPDIR", old_->c_str(), 1);
    else
        ::unsetenv("TMPDIR");
}

stdin_feeder::stdin_feeder(child& c, std::string data)
    : thread_([&c, data = std::move(data)] {
          c.write_stdin(data);
          c.close_stdin();
      }) {}

stdin_feeder::~stdin_feeder() {
    thread_.join();
}

void make_stale_socket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);  // a plain descriptor of the test's own: the file stays, nobody listens
    ASSERT_TRUE(bound) << path;
}

namespace pipe_io {

std::span<const std::byte> bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string read_n(npipe::pipe_stream& pipe, std::size_t n) {
    std::string out;
    std::byte buffer[4096];
    while (out.size() < n) {
        auto got = pipe.read(std::span(buffer, std::min(sizeof buffer, n - out.size())));
        if (got == 0)
            break;
        out.append(reinterpret_cast<const char*>(buffer), got);
    }
    return out;
}

std::string read_to_end(npipe::pipe_stream& pipe) {
    std::string data;
    std::vector<std::byte> buffer(256 * 1024);
    while (auto n = pipe.read(buffer))
        data.append(reinterpret_cast<const char*>(buffer.data()), n);
    return data;
}

int line_count(const std::string& text) {
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace pipe_io

}  // namespace npipe::test
