// `npipe chat server|client`: the seed series' part 4 conversation over a message-mode pipe,
// run as two processes talking through their stdin and stdout.
#include <gtest/gtest.h>

#include <string>

#include "npipe/named_pipe_server.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using npipe::test::child;
using npipe::test::cli;
using npipe::test::unique_pipe_name;

struct chat_pair {
    explicit chat_pair(const std::string& tag)
        : name(unique_pipe_name(tag)), server({cli(), "chat", "server", name}), client([&] {
              EXPECT_TRUE(npipe::test::wait_for_server(name, 10s)) << "no chat server";
              return std::vector<std::string>{cli(), "chat", "client", name, "--timeout", "10000"};
          }()) {}
    std::string name;
    child server;
    child client;
};

TEST(ChatCli, PartFourConversationEndsForBothWhenTheClientSendsX) {
    chat_pair chat("chat");
    const std::string long_line(100 * 1024, 'L');  // many 5-byte reads, several records

    ASSERT_TRUE(chat.client.write_stdin("Hello from the client\n"));
    ASSERT_TRUE(chat.server.wait_for_output("Hello from the client\n", 10s)) << chat.server.err();
    ASSERT_TRUE(chat.server.write_stdin("Hello from the server, in several chunks\n"));
    ASSERT_TRUE(chat.client.wait_for_output("Hello from the server, in several chunks\n", 10s))
        << chat.client.err();
    ASSERT_TRUE(chat.client.write_stdin("\n" + long_line + "\n"));  // an empty message too
    ASSERT_TRUE(chat.server.wait_for_output(long_line + "\n", 10s));
    ASSERT_TRUE(chat.client.write_stdin("x\n"));

    EXPECT_EQ(chat.client.wait(10s), 0) << chat.client.err();
    EXPECT_EQ(chat.server.wait(10s), 0) << chat.server.err();
    EXPECT_EQ(chat.server.out(), "Hello from the client\n\n" + long_line + "\nx\n");
    EXPECT_EQ(chat.client.out(), "Hello from the server, in several chunks\n");
}

TEST(ChatCli, TheServerSendingXEndsTheChatForBoth) {
    chat_pair chat("chatx");
    ASSERT_TRUE(chat.client.write_stdin("ping\n"));
    ASSERT_TRUE(chat.server.wait_for_output("ping\n", 10s)) << chat.server.err();
    ASSERT_TRUE(chat.server.write_stdin("pong\nx\n"));
    EXPECT_EQ(chat.client.wait(10s), 0) << chat.client.err();
    EXPECT_EQ(chat.server.wait(10s), 0) << chat.server.err();
    EXPECT_EQ(chat.client.out(), "pong\nx\n");
    EXPECT_EQ(chat.server.out(), "ping\n");
}

TEST(ChatCli, TheEndOfEitherSidesInputEndsTheChatForBoth) {
    chat_pair chat("chateof");
    ASSERT_TRUE(chat.client.write_stdin("first\nlast line without a newline"));
    ASSERT_TRUE(chat.server.wait_for_output("first\n", 10s)) << chat.server.err();
    chat.client.close_stdin();
    EXPECT_EQ(chat.client.wait(10s), 0) << chat.client.err();
    EXPECT_EQ(chat.server.wait(10s), 0) << chat.server.err();
    EXPECT_EQ(chat.server.out(), "first\nlast line without a newline\n");
}

TEST(ChatCli, TheClientRefusesAByteModePipe) {
    auto name = unique_pipe_name("chatbyte");
    npipe::named_pipe_server server(name);
    auto r = npipe::test::run({cli(), "chat", "client", name, "--timeout", "5000"}, {}, 30s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("is a byte-mode pipe"), std::string::npos) << r.err;
}

}  // namespace
