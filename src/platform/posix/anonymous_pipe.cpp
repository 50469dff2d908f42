// Anonymous pipes: pipe2() ends handed to child processes by descriptor number, as .NET does.
#include "npipe/anonymous_pipe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>

#include "core/owned_client_handle.hpp"
#include "core/pipe_state.hpp"
#include "npipe/errors.hpp"
#include "platform/posix/errno_code.hpp"
#include "platform/posix/unique_fd.hpp"
#include "transport/posix_fifo/fifo_transport.hpp"
#include "transport/unix_socket/socket_transport.hpp"

namespace npipe {
namespace detail {

using client_handle_of_server = owned_client_handle<unique_fd, int>;

struct anon_server_state : pipe_state {
    anon_server_state(pipe_direction direction) : pipe_state("", direction) {}
    client_handle_of_server client;

    void on_close() noexcept override { client.dispose(); }
};

}  // namespace detail

namespace {

using detail::unique_fd;

[[noreturn]] void fail(std::error_code ec, const std::string& operation) {
    throw pipe_error(ec, "", operation);
}

std::error_code last_error() {
    return detail::errno_code(errno);
}

std::string handle_operation(std::string_view handle) {
    return "open client handle '" + std::string(handle) + "'";
}

// Kernel pipes opened onto 0..2 (when the process started with one of them closed) would be
// handed to a child under a number that is its stdin, stdout or stderr; keep them above.
unique_fd above_stdio(unique_fd fd) {
    if (fd.get() > 2)
        return fd;
    unique_fd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    if (!moved)
        fail(last_error(), "create anonymous pipe: move descriptor above 2");
    return moved;
}

std::size_t pipe_max_size() {
    std::size_t value = 0;
    if (std::FILE* f = std::fopen("/proc/sys/fs/pipe-max-size", "re")) {
        unsigned long long n = 0;
        if (std::fscanf(f, "%llu", &n) == 1)
            value = static_cast<std::size_t>(n);
        std::fclose(f);
    }
    return value;
}

void set_pipe_size(int fd, std::size_t size) {
    if (size > static_cast<std::size_t>(INT_MAX))
        fail(errc::invalid_argument,
             "create anonymous pipe: buffer size " + std::to_string(size) + " exceeds INT_MAX");
    if (::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(size)) >= 0)
        return;
    // Unprivileged processes may not exceed pipe-max-size: buffer_size is a request, as on
    // Windows, so take the largest size allowed rather than refusing the pipe.
    if (errno == EPERM) {
        std::size_t max = pipe_max_size();
        if (max > 0 && max < size && ::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(max)) >= 0)
            return;
        errno = EPERM;
    }
    fail(last_error(), "create anonymous pipe: set buffer size to " + std::to_string(size));
}

std::shared_ptr<detail::anon_server_state> make_server(pipe_direction direction,
                                                       handle_inheritability inheritability,
                                                       std::size_t buffer_size) {
    if (direction != pipe_direction::in && direction != pipe_direction::out)
        fail(errc::not_supported,
             "create anonymous pipe: direction must be in or out (a kernel pipe flows one way)");
    auto state = std::make_shared<detail::anon_server_state>(direction);
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0)
        fail(last_error(), "create anonymous pipe");
    unique_fd read_end(ends[0]), write_end(ends[1]);
    read_end = above_stdio(std::move(read_end));
    write_end = above_stdio(std::move(write_end));
    if (buffer_size > 0)
        set_pipe_size(write_end.get(), buffer_size);
    bool server_writes = direction == pipe_direction::out;
    unique_fd client = server_writes ? std::move(read_end) : std::move(write_end);
    state->conn = std::make_shared<detail::fifo_transport>(server_writes ? std::move(write_end)
                                                                         : std::move(read_end));
    if (inheritability == handle_inheritability::inheritable &&
        ::fcntl(client.get(), F_SETFD, 0) != 0)
        fail(last_error(), "create anonymous pipe: make the client handle inheritable");

    state->client.adopt(std::move(client));
    return state;
}

const char* describe_type(mode_t mode) {
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "an unknown kind of file";
}

int parse_handle(std::string_view text) {
    int fd = -1;
    // Digits only: from_chars alone would accept a sign, and .NET's long.Parse would accept
    // spaces; a handle string is always written by a program, so anything else is a mistake.
    bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), fd);
    if (!digits || error != std::errc{} || end != text.data() + text.size())
        fail(errc::invalid_argument,
             handle_operation(text) + ": not a decimal file descriptor number");
    return fd;
}

std::shared_ptr<detail::pipe_state> adopt(pipe_direction direction, int fd,
                                          const std::string& operation) {
    if (direction != pipe_direction::in && direction != pipe_direction::out)
        fail(errc::not_supported,
             operation + ": direction must be in or out (an anonymous pipe flows one way)");
    if (fd < 0)
        fail(errc::invalid_argument, operation + ": negative descriptor");
    int fd_flags = ::fcntl(fd, F_GETFD);
    if (fd_flags < 0)
        fail(errno == EBADF ? std::error_code(EBADF, std::system_category()) : last_error(),
             operation + ": not an open file descriptor");
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        fail(last_error(), operation + ": fstat");
    bool fifo = false;
    if (S_ISFIFO(st.st_mode)) {
        fifo = true;
        int access = ::fcntl(fd, F_GETFL) & O_ACCMODE;
        bool reading = direction == pipe_direction::in;
        if (access != O_RDWR && (access == O_RDONLY) != reading)
            fail(errc::wrong_direction,
                 operation + (reading ? " for reading: it is the write end of a pipe"
                                      : " for writing: it is the read end of a pipe"));
    } else if (!S_ISSOCK(st.st_mode)) {
        fail(errc::invalid_argument,
             operation + ": " + describe_type(st.st_mode) + ", not a pipe or a socket");
    }

    auto state = std::make_shared<detail::pipe_state>("", direction);
    // A failure to allocate leaves the descriptor to the caller, as every failure above does.
    detail::unique_fd owned(fd);
    try {
        if (fifo)
            state->conn = std::make_shared<detail::fifo_transport>(std::move(owned));
        else
            state->conn = std::make_shared<detail::socket_transport>(fd, false);
    } catch (...) {
        owned.release();
        throw;
    }
    owned.release();
    // Ours from now on: a grandchild started by this process must not keep the pipe open.
    if (!(fd_flags & FD_CLOEXEC))
        ::fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC);
    detail::client_handle_of_server::taken_over(fd);
    return state;
}

}  // namespace

anonymous_pipe_server::anonymous_pipe_server(pipe_direction direction,
                                             handle_inheritability inheritability,
                                             std::size_t buffer_size)
    : pipe_stream(make_server(direction, inheritability, buffer_size)) {}

std::string anonymous_pipe_server::get_client_handle_as_string() const {
    int fd = client_handle();
    if (fd < 0)
        fail(errc::not_connected,
             "get client handle: the local copy of the client handle was disposed of");
    return std::to_string(fd);
}

anonymous_pipe_server::native_handle_type anonymous_pipe_server::client_handle() const noexcept {
    return static_cast<detail::anon_server_state&>(state()).client.get(-1);
}

void anonymous_pipe_server::dispose_local_copy_of_client_handle() noexcept {
    static_cast<detail::anon_server_state&>(state()).client.dispose();
}

anonymous_pipe_server::native_handle_type anonymous_pipe_server::release_client_handle() noexcept {
    return static_cast<detail::anon_server_state&>(state()).client.release(-1);
}

std::size_t anonymous_pipe_server::buffer_size() const noexcept {
    int fd = native_handle();
    int size = fd >= 0 ? ::fcntl(fd, F_GETPIPE_SZ) : -1;
    return size > 0 ? static_cast<std::size_t>(size) : 0;
}

anonymous_pipe_client::anonymous_pipe_client(pipe_direction direction,
                                             std::string_view handle_string)
    : pipe_stream(adopt(direction, parse_handle(handle_string), handle_operation(handle_string))) {}

anonymous_pipe_client::anonymous_pipe_client(pipe_direction direction, native_handle_type handle)
    : pipe_stream(adopt(direction, handle, handle_operation(std::to_string(handle)))) {}

}  // namespace npipe
