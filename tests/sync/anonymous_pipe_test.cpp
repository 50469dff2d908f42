// Anonymous pipes: directions, end of stream, handle strings, inheritability, buffer sizes, the
// kinds of descriptor a client accepts, and a child that sees end of stream.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "npipe/anonymous_pipe.hpp"
#include "npipe/errors.hpp"
#include "npipe/process.hpp"
#include "support/test_support.hpp"

namespace npipe {
namespace {

using namespace std::chrono_literals;

std::span<const std::byte> bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// Everything until end of stream.
std::string read_all(pipe_stream& pipe) {
    std::string data;
    std::byte buffer[65536];
    while (std::size_t n = pipe.read(buffer))
        data.append(reinterpret_cast<const char*>(buffer), n);
    return data;
}

// Everything from fd until end of stream, or nullopt when no end of stream comes in `timeout`:
// a test of "the reader sees end of stream" must fail, not hang, when it does not.
std::optional<std::string> read_until_eof(int fd, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string data;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0)
            return std::nullopt;
        char buffer[4096];
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return data;
        data.append(buffer, static_cast<std::size_t>(n));
    }
}

bool close_on_exec(int fd) {
    int flags = ::fcntl(fd, F_GETFD);
    EXPECT_GE(flags, 0) << "fd " << fd;
    return flags & FD_CLOEXEC;
}

// A descriptor number that is not open right now (this test process opens nothing in between).
int closed_descriptor() {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(fd);
    return fd;
}

template <class F>
std::error_code error_of(F&& f) {
    try {
        f();
    } catch (const pipe_error& e) {
        return e.code();
    }
    return {};
}

template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const pipe_error& e) {
        return e.what();
    }
    return {};
}

TEST(AnonymousPipe, DefaultServerWritesAndTheClientReadsToEndOfStream) {
    anonymous_pipe_server server;
    EXPECT_TRUE(server.can_write());
    EXPECT_FALSE(server.can_read());
    EXPECT_EQ(server.pipe_name(), "");
    std::string handle = server.get_client_handle_as_string();
    EXPECT_EQ(handle, std::to_string(server.client_handle()));
    struct stat st {};
    ASSERT_EQ(::fstat(std::stoi(handle), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));

    anonymous_pipe_client client(pipe_direction::in, handle);
    EXPECT_TRUE(client.can_read());
    EXPECT_FALSE(client.can_write());
    EXPECT_EQ(client.native_handle(), std::stoi(handle));
    server.write("hello");
    server.write_byte('!');
    server.close();
    EXPECT_EQ(read_all(client), "hello!");
    EXPECT_EQ(client.read_byte(), -1);  // end of stream stays end of stream
}

TEST(AnonymousPipe, DirectionInMakesTheClientTheWriter) {
    anonymous_pipe_server server(pipe_direction::in);
    EXPECT_TRUE(server.can_read());
    EXPECT_FALSE(server.can_write());
    anonymous_pipe_client client(pipe_direction::out, server.get_client_handle_as_string());
    client.write("from the client");
    client.close();
    EXPECT_EQ(read_all(server), "from the client");
}

TEST(AnonymousPipe, EachEndRefusesTheOtherDirection) {
    anonymous_pipe_server server;
    anonymous_pipe_client client(pipe_direction::in, server.get_client_handle_as_string());
    std::byte b[1];
    std::error_code ec;
    server.read(b, ec);
    EXPECT_EQ(ec, errc::wrong_direction);
    client.write(bytes("x"), ec);
    EXPECT_EQ(ec, errc::wrong_direction);
}

TEST(AnonymousPipe, InOutIsNotSupported) {
    EXPECT_EQ(error_of([] { anonymous_pipe_server s(pipe_direction::in_out); }),
              errc::not_supported);
    anonymous_pipe_server server;
    EXPECT_EQ(error_of([&] {
                  anonymous_pipe_client c(pipe_direction::in_out,
                                          server.get_client_handle_as_string());
              }),
              errc::not_supported);
    // The refused client did not take the handle.
    EXPECT_GE(server.client_handle(), 0);
}

TEST(AnonymousPipe, MovesManyMegabytesIntact) {
    anonymous_pipe_server server(pipe_direction::out);
    anonymous_pipe_client client(pipe_direction::in, server.get_client_handle_as_string());
    const std::string data = test::pattern(8 << 20, 7);
    std::thread writer([&] {
        server.write(bytes(data));
        server.close();
    });
    std::string got = read_all(client);
    writer.join();
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
}

TEST(AnonymousPipe, OnlyTheClientEndIsMadeInheritable) {
    anonymous_pipe_server inheritable(pipe_direction::out, handle_inheritability::inheritable);
    EXPECT_TRUE(close_on_exec(inheritable.native_handle()));
    EXPECT_FALSE(close_on_exec(inheritable.client_handle()));

    anonymous_pipe_server in(pipe_direction::in, handle_inheritability::inheritable);
    EXPECT_TRUE(close_on_exec(in.native_handle()));
    EXPECT_FALSE(close_on_exec(in.client_handle()));

    anonymous_pipe_server private_pipe(pipe_direction::out, handle_inheritability::none);
    EXPECT_TRUE(close_on_exec(private_pipe.native_handle()));
    EXPECT_TRUE(close_on_exec(private_pipe.client_handle()));
}

TEST(AnonymousPipe, DisposingTheLocalCopyClosesItAndTheWriterThenSeesABrokenPipe) {
    // Default SIGPIPE disposition: a SIGPIPE raised by the library would kill this test.
    auto old = ::signal(SIGPIPE, SIG_DFL);
    {
        anonymous_pipe_server server;
        int fd = server.client_handle();
        server.dispose_local_copy_of_client_handle();
        EXPECT_EQ(server.client_handle(), -1);
        errno = 0;
        EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
        EXPECT_EQ(errno, EBADF);
        server.dispose_local_copy_of_client_handle();  // idempotent
        EXPECT_EQ(error_of([&] { server.get_client_handle_as_string(); }), errc::not_connected);

        std::error_code ec;
        server.write(bytes("nobody reads"), ec);
        EXPECT_EQ(ec, errc::broken_pipe);
        server.write(bytes("again"), ec);
        EXPECT_EQ(ec, errc::broken_pipe);
        EXPECT_THROW(server.write("throwing"), pipe_error);
    }
    ::signal(SIGPIPE, old);
}

TEST(AnonymousPipe, AClientInThisProcessTakesTheHandleOverFromItsServer) {
    anonymous_pipe_server server;
    int fd = server.client_handle();
    anonymous_pipe_client client(pipe_direction::in, server.get_client_handle_as_string());
    // The server no longer owns it: disposing must not close the client's descriptor.
    EXPECT_EQ(server.client_handle(), -1);
    server.dispose_local_copy_of_client_handle();
    EXPECT_GE(::fcntl(fd, F_GETFD), 0);
    server.write("still open");
    server.close();
    EXPECT_EQ(read_all(client), "still open");
}

TEST(AnonymousPipe, ReleasedHandleBelongsToTheCaller) {
    anonymous_pipe_server server(pipe_direction::in);
    int fd = server.release_client_handle();
    ASSERT_GE(fd, 0);
    EXPECT_EQ(server.client_handle(), -1);
    EXPECT_EQ(server.release_client_handle(), -1);
    anonymous_pipe_client client(pipe_direction::out, fd);
    client.write("released");
    client.close();
    EXPECT_EQ(read_all(server), "released");
}

TEST(AnonymousPipe, BufferSizeIsAppliedToThePipe) {
    int probe[2];
    ASSERT_EQ(::pipe2(probe, O_CLOEXEC), 0);
    int system_default = ::fcntl(probe[0], F_GETPIPE_SZ);
    ::close(probe[0]);
    ::close(probe[1]);

    anonymous_pipe_server plain;
    EXPECT_EQ(plain.buffer_size(), static_cast<std::size_t>(system_default));

    const std::size_t wanted = std::size_t(system_default) * 16;
    anonymous_pipe_server big(pipe_direction::out, handle_inheritability::none, wanted);
    EXPECT_GE(big.buffer_size(), wanted);
    EXPECT_EQ(::fcntl(big.client_handle(), F_GETPIPE_SZ), static_cast<int>(big.buffer_size()));

    // A full pipe of that size is accepted without a reader.
    std::string fill(big.buffer_size(), 'x');
    big.write(fill);

    EXPECT_EQ(error_of([] {
                  anonymous_pipe_server s(pipe_direction::out, handle_inheritability::none,
                                          std::size_t(INT_MAX) + 1);
              }),
              errc::invalid_argument);
}

TEST(AnonymousPipe, BufferSizeBeyondTheLimitGetsTheLimitOrMore) {
    std::size_t max = 0;
    std::ifstream("/proc/sys/fs/pipe-max-size") >> max;
    ASSERT_GT(max, 0u);
    // Unprivileged: clamped to the limit. Privileged (CAP_SYS_RESOURCE): granted in full.
    anonymous_pipe_server server(pipe_direction::out, handle_inheritability::none, max * 2);
    EXPECT_GE(server.buffer_size(), max);
}

TEST(AnonymousPipe, ClientAcceptsASocket) {
    auto old = ::signal(SIGPIPE, SIG_DFL);
    {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        anonymous_pipe_client reader(pipe_direction::in, std::to_string(sv[0]));
        anonymous_pipe_client writer(pipe_direction::out, std::to_string(sv[1]));
        writer.write("over a socket");
        writer.shutdown_write();
        EXPECT_EQ(read_all(reader), "over a socket");
        reader.close();
        std::error_code ec;
        writer.close();
        int again[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, again), 0);
        anonymous_pipe_client lonely(pipe_direction::out, std::to_string(again[0]));
        ::close(again[1]);
        lonely.write(bytes("peer gone"), ec);
        EXPECT_EQ(ec, errc::broken_pipe);
    }
    ::signal(SIGPIPE, old);
}

TEST(AnonymousPipe, ClientAcceptsANamedFifo) {
    test::temp_dir dir;
    std::string path = dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    int read_fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(read_fd, 0);
    ::fcntl(read_fd, F_SETFL, 0);
    int write_fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(write_fd, 0);
    anonymous_pipe_client reader(pipe_direction::in, std::to_string(read_fd));
    anonymous_pipe_client writer(pipe_direction::out, std::to_string(write_fd));
    writer.write("through a fifo");
    writer.close();
    EXPECT_EQ(read_all(reader), "through a fifo");
}

TEST(AnonymousPipe, ClientMarksTheAdoptedHandleCloseOnExec) {
    int ends[2];
    ASSERT_EQ(::pipe(ends), 0);  // inheritable, as a child receives it
    anonymous_pipe_client reader(pipe_direction::in, std::to_string(ends[0]));
    anonymous_pipe_client writer(pipe_direction::out, std::to_string(ends[1]));
    EXPECT_TRUE(close_on_exec(ends[0]));
    EXPECT_TRUE(close_on_exec(ends[1]));
}

TEST(AnonymousPipe, MalformedHandleStringsAreRefusedNamingTheHandle) {
    for (std::string bad : {"", "abc", "-1", "+3", " 3", "3 ", "0x3", "3.0", "99999999999999"}) {
        std::string what;
        auto ec = error_of([&] {
            try {
                anonymous_pipe_client c(pipe_direction::in, bad);
            } catch (const pipe_error& e) {
                what = e.what();
                throw;
            }
        });
        EXPECT_EQ(ec, errc::invalid_argument) << "'" << bad << "'";
        EXPECT_NE(what.find("'" + bad + "'"), std::string::npos) << what;
        EXPECT_NE(what.find("decimal"), std::string::npos) << what;
    }
}

TEST(AnonymousPipe, HandlesThatAreNotOpenPipesAreRefusedWithTheCause) {
    int closed = closed_descriptor();
    std::string what =
        message_of([&] { anonymous_pipe_client c(pipe_direction::in, std::to_string(closed)); });
    EXPECT_NE(what.find("'" + std::to_string(closed) + "'"), std::string::npos) << what;
    EXPECT_NE(what.find("not an open file descriptor"), std::string::npos) << what;
    EXPECT_EQ(error_of([&] { anonymous_pipe_client c(pipe_direction::in, closed); }),
              std::errc::bad_file_descriptor);

    test::temp_dir dir;
    std::string file = dir.path() + "/plain";
    std::ofstream(file) << "data";
    struct {
        int fd;
        const char* kind;
    } cases[] = {{::open(file.c_str(), O_RDONLY | O_CLOEXEC), "regular file"},
                 {::open("/dev/null", O_RDONLY | O_CLOEXEC), "character device"},
                 {::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC), "directory"}};
    for (auto& c : cases) {
        ASSERT_GE(c.fd, 0);
        std::string handle = std::to_string(c.fd);
        std::error_code ec;
        std::string message;
        try {
            anonymous_pipe_client client(pipe_direction::in, handle);
        } catch (const pipe_error& e) {
            ec = e.code();
            message = e.what();
        }
        EXPECT_EQ(ec, errc::invalid_argument) << c.kind;
        EXPECT_NE(message.find(c.kind), std::string::npos) << message;
        EXPECT_NE(message.find("'" + handle + "'"), std::string::npos) << message;
        // A refused descriptor is left to its owner.
        EXPECT_GE(::fcntl(c.fd, F_GETFD), 0);
        ::close(c.fd);
    }
}

TEST(AnonymousPipe, TheWrongEndOfAPipeIsRefused) {
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    std::string what =
        message_of([&] { anonymous_pipe_client c(pipe_direction::in, std::to_string(ends[1])); });
    EXPECT_NE(what.find("write end"), std::string::npos) << what;
    EXPECT_EQ(error_of([&] { anonymous_pipe_client c(pipe_direction::out, ends[0]); }),
              errc::wrong_direction);
    ::close(ends[0]);
    ::close(ends[1]);
}

// Mono's defect (corefx #34910): with both ends inheritable, a child holds the parent's end too
// and the reader never sees end of stream. Here two children run at once, each on its own
// inheritable pipe: the first child's pipe must end when that child exits, although the second
// child (started while both client ends were inheritable) is still running.
TEST(AnonymousPipe, TheParentSeesEndOfStreamWhileAnotherChildRuns) {
    anonymous_pipe_server first(pipe_direction::in, handle_inheritability::inheritable);
    anonymous_pipe_server second(pipe_direction::in, handle_inheritability::inheritable);
    int input1[2], input2[2];
    ASSERT_EQ(::pipe2(input1, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(input2, O_CLOEXEC), 0);

    process_options o1;
    o1.stdin_fd = input1[0];
    o1.inherit_fds = {first.client_handle()};
    auto child1 = spawn({test::cli(), "anon", "write", first.get_client_handle_as_string()}, o1);
    process_options o2;
    o2.stdin_fd = input2[0];
    o2.inherit_fds = {second.client_handle()};
    auto child2 = spawn({test::cli(), "anon", "write", second.get_client_handle_as_string()}, o2);
    first.dispose_local_copy_of_client_handle();
    second.dispose_local_copy_of_client_handle();
    ::close(input1[0]);
    ::close(input2[0]);

    ASSERT_EQ(::write(input1[1], "one\n", 4), 4);
    ::close(input1[1]);
    auto got = read_until_eof(first.native_handle(), 20s);
    ASSERT_TRUE(got.has_value()) << "no end of stream on the first pipe";
    EXPECT_EQ(*got, "one\n");
    EXPECT_EQ(child1.wait(), exit_status{});
    EXPECT_FALSE(child2.try_wait().has_value());

    ASSERT_EQ(::write(input2[1], "two\n", 4), 4);
    ::close(input2[1]);
    got = read_until_eof(second.native_handle(), 20s);
    ASSERT_TRUE(got.has_value()) << "no end of stream on the second pipe";
    EXPECT_EQ(*got, "two\n");
    EXPECT_EQ(child2.wait(), exit_status{});
}

TEST(AnonymousPipe, AChildReadingThePipeSeesEndOfStreamWhenTheParentCloses) {
    anonymous_pipe_server server(pipe_direction::out, handle_inheritability::inheritable);
    int output[2];
    ASSERT_EQ(::pipe2(output, O_CLOEXEC), 0);
    process_options options;
    options.stdout_fd = output[1];
    options.inherit_fds = {server.client_handle()};
    auto child =
        spawn({test::cli(), "anon", "read", server.get_client_handle_as_string()}, options);
    ::close(output[1]);
    server.dispose_local_copy_of_client_handle();
    server.write("to the child");
    server.close();
    auto got = read_until_eof(output[0], 20s);
    ::close(output[0]);
    ASSERT_TRUE(got.has_value()) << "the child never finished";
    EXPECT_EQ(*got, "to the child");
    EXPECT_EQ(child.wait(), exit_status{});
}

}  // namespace
}  // namespace npipe
