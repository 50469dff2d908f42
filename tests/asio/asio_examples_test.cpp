// The asynchronous examples (examples/asio) build and do what they say.
#include <signal.h>

#include <gtest/gtest.h>

#include <string>

#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;
using namespace npipe::test;

namespace {

std::string example(const std::string& name) {
    return std::string(NPIPE_ASIO_EXAMPLES_DIR) + "/example_asio_" + name;
}

TEST(AsioExamples, EchoServerAndClient) {
    auto name = unique_pipe_name("ex-echo");
    child server({example("echo_server"), name});
    ASSERT_TRUE(wait_for_server(name)) << server.err();
    auto client = run({example("echo_client"), name, "one", "two words"}, {}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "one\ntwo words\n");
    ::kill(server.pid(), SIGINT);
    EXPECT_EQ(server.wait(10s), 0) << server.err();
}

TEST(AsioExamples, MinimalServerFromTheReadme) {
    // Its name is fixed ("echo"): a TMPDIR of its own keeps it from meeting other tests.
    temp_dir dir;
    child::options opts;
    opts.env["TMPDIR"] = dir.path();
    child server({example("minimal_server")}, opts);
    auto client = run({example("echo_client"), "echo", "minimal"}, {}, 30s, opts);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "minimal\n");
}

TEST(AsioExamples, ChatServerRelaysEachMessageToEveryone) {
    auto name = unique_pipe_name("ex-chat");
    child server({example("chat_server"), name});
    ASSERT_TRUE(wait_for_server(name)) << server.err();
    auto receive = [](npipe::pipe_stream& p) {
        std::string m(100, '\0');
        auto n = p.read(std::as_writable_bytes(std::span(m)));
        EXPECT_TRUE(p.is_message_complete());
        return m.substr(0, n);
    };
    // A member hears its own messages too: hearing its "join" proves it is in the room.
    npipe::named_pipe_client alice(name), bob(name);
    alice.connect(10s);
    alice.set_read_mode(npipe::transmission_mode::message);
    alice.write("alice joins");
    EXPECT_EQ(receive(alice), "alice joins");
    bob.connect(10s);
    bob.set_read_mode(npipe::transmission_mode::message);
    bob.write("bob joins");
    EXPECT_EQ(receive(bob), "bob joins");
    EXPECT_EQ(receive(alice), "bob joins");
    alice.write("hello from alice");
    EXPECT_EQ(receive(alice), "hello from alice");
    EXPECT_EQ(receive(bob), "hello from alice");
    ::kill(server.pid(), SIGTERM);
    EXPECT_EQ(server.wait(10s), 0) << server.err();
}

TEST(AsioExamples, TimeoutClientTimesOutAnswersAndCancels) {
    // No server: the connect gives up after its 2 s.
    auto none = run({example("timeout_client"), unique_pipe_name("ex-none")}, {}, 30s);
    EXPECT_EQ(none.exit_code, 2) << none.err;
    EXPECT_NE(none.err.find("within 2 s"), std::string::npos) << none.err;

    // An echo server answers; nothing more comes within the grace period.
    auto name = unique_pipe_name("ex-to");
    {
        child server({example("echo_server"), name});
        ASSERT_TRUE(wait_for_server(name)) << server.err();
        auto asked = run({example("timeout_client"), name, "ping"}, {}, 30s);
        EXPECT_EQ(asked.exit_code, 0) << asked.err;
        EXPECT_EQ(asked.out, "ping\n(nothing more within 100 ms)\n");
    }

    // A server that never answers: Ctrl-C cancels the wait for the answer.
    auto silent_name = unique_pipe_name("ex-silent");
    npipe::named_pipe_server silent(silent_name);
    child client({example("timeout_client"), silent_name, "anyone?"});
    silent.wait_for_connection(20s);
    std::string question(7, '\0');
    std::size_t have = 0;
    while (have < question.size())
        have += silent.read(std::as_writable_bytes(std::span(question)).subspan(have));
    EXPECT_EQ(question, "anyone?");
    // The question has arrived, so the client is now waiting for the answer.
    ::kill(client.pid(), SIGINT);
    EXPECT_EQ(client.wait(10s), 1);
    EXPECT_NE(client.err().find("cancelled"), std::string::npos) << client.err();
}

}  // namespace
