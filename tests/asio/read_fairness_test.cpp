// npipe::asio message reads take bounded work per event-loop turn: a message that arrives as a
// long run of records (here empty continuation frames, which carry nothing) is read a share at
// a time, and other handlers run in between (#16 item 11).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/pipe_name.hpp"
#include "support/test_support.hpp"

namespace {

namespace na = npipe::asio;

TEST(AsioReadFairness, ALongMessageLetsOtherHandlersRunBeforeItCompletes) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root for a send buffer that holds the whole message";
    npipe::test::tmpdir_scope dir;
    asio::io_context io;
    na::named_pipe_acceptor acceptor(io, "fair", npipe::pipe_direction::in_out,
                                     npipe::max_allowed_server_instances,
                                     npipe::transmission_mode::message);

    // A raw client queues the whole message before the server reads a byte: 64 records of
    // 16,384 empty "more follows" frames, then a last frame with "hi".
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    int big = 32 << 20;
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big), 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, acceptor.socket_path().c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string record;
    for (int i = 0; i < 16384; ++i)
        record += std::string("\x00\x00\x00\x80", 4);
    for (int i = 0; i < 64; ++i)
        ASSERT_EQ(::send(fd, record.data(), record.size(), MSG_DONTWAIT | MSG_NOSIGNAL),
                  static_cast<ssize_t>(record.size()))
            << "record " << i;
    const std::string last("\x02\x00\x00\x00hi", 6);
    ASSERT_EQ(::send(fd, last.data(), last.size(), MSG_DONTWAIT | MSG_NOSIGNAL), 6);

    std::vector<std::string> order;
    std::string message;
    na::pipe_stream pipe(io);
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream accepted) {
        ASSERT_FALSE(ec) << ec.message();
        pipe = std::move(accepted);
        pipe.async_read_message(asio::dynamic_buffer(message),
                                [&](std::error_code read_ec, std::size_t n) {
                                    EXPECT_FALSE(read_ec) << read_ec.message();
                                    EXPECT_EQ(n, 2u);
                                    order.push_back("read");
                                });
        // Everything the read needs is already queued: without a bound it would decode all of
        // it before anything else runs.
        asio::post(io, [&] { order.push_back("other"); });
    });
    io.run();
    ::close(fd);
    EXPECT_EQ(message, "hi");
    ASSERT_EQ(order.size(), 2u);
    EXPECT_EQ(order[0], "other");
}

}  // namespace
