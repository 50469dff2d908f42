// npipe::relay: the two-way copy between a pipe and two descriptors, and its account of how it
// ended (the CLI's serve and connect are built on it).
#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/relay.hpp"
#include "support/test_support.hpp"

namespace npipe::test {
namespace {

using namespace pipe_io;

// A pipe(2) with both ends owned.
struct os_pipe {
    int read_end = -1, write_end = -1;
    os_pipe() {
        int fds[2];
        EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    ~os_pipe() {
        close_read();
        close_write();
    }
    void close_read() {
        if (read_end >= 0)
            ::close(read_end);
        read_end = -1;
    }
    void close_write() {
        if (write_end >= 0)
            ::close(write_end);
        write_end = -1;
    }
    std::string drain() {
        std::string out;
        char buffer[4096];
        for (ssize_t n; (n = ::read(read_end, buffer, sizeof buffer)) > 0;)
            out.append(buffer, static_cast<std::size_t>(n));
        return out;
    }
};

class Relay : public ::testing::Test {
  protected:
    void SetUp() override { dir_.emplace(); }
    void TearDown() override { dir_.reset(); }

  private:
    std::optional<tmpdir_scope> dir_;
};

TEST_F(Relay, CopiesBothWaysAndCompletes) {
    auto name = unique_pipe_name("relay");
    named_pipe_server server(name);
    std::thread peer([&] {
        server.wait_for_connection();
        EXPECT_EQ(read_to_end(server), "hello");
        server.write(bytes("world"));
        server.close();
    });
    named_pipe_client client(name);
    client.connect(5s);
    os_pipe in, out;
    ASSERT_EQ(::write(in.write_end, "hello", 5), 5);
    in.close_write();
    relay_counters counters;
    relay_options options;
    options.counters = &counters;
    auto result = relay(client, in.read_end, out.write_end, options);
    peer.join();
    out.close_write();
    EXPECT_TRUE(result.ok()) << result.describe(name);
    EXPECT_TRUE(result.input_ended);
    EXPECT_EQ(result.bytes_sent, 5u);
    EXPECT_EQ(result.bytes_received, 5u);
    EXPECT_EQ(counters.sent.load(), 5u);
    EXPECT_EQ(counters.received.load(), 5u);
    EXPECT_EQ(out.drain(), "world");
    EXPECT_EQ(result.describe(name), "");
}

TEST_F(Relay, EndsAtOnceWhenThePeerClosesWhileInputStaysOpen) {
    auto name = unique_pipe_name("hangup");
    named_pipe_server server(name);
    std::thread peer([&] {
        server.wait_for_connection();
        server.close();
    });
    named_pipe_client client(name);
    client.connect(5s);
    os_pipe in, out;  // the input's write end stays open: the input never ends
    auto result = relay(client, in.read_end, out.write_end);
    peer.join();
    EXPECT_EQ(result.end, relay_end::peer_closed);
    EXPECT_FALSE(result.input_ended);
    EXPECT_NE(result.describe(name).find("'" + name + "'"), std::string::npos);
    EXPECT_NE(result.describe(name).find("before our input ended"), std::string::npos)
        << result.describe(name);
}

TEST_F(Relay, ReportsAnOutputClosedBeforeThePipesDataEnded) {
    auto name = unique_pipe_name("output");
    named_pipe_server server(name);
    std::thread peer([&] {
        server.wait_for_connection();
        std::error_code ec;
        auto chunk = pattern(1 << 20, 5);
        for (int i = 0; i < 64 && !ec; ++i)
            server.write(bytes(chunk), ec);
        server.close();
    });
    named_pipe_client client(name);
    client.connect(5s);
    os_pipe in, out;
    in.close_write();
    out.close_read();  // nobody reads our output
    auto result = relay(client, in.read_end, out.write_end);
    peer.join();
    EXPECT_EQ(result.end, relay_end::output_closed) << result.describe(name);
}

TEST_F(Relay, NoticesAServerThatClosedWithoutReadingWhatWeSent) {
    // A client in a server's backlog, never accepted: its bytes are queued, then the server
    // goes away. The read side sees only an end of stream, yet what we sent was lost.
    auto name = unique_pipe_name("reset");
    std::optional<named_pipe_server> server(std::in_place, name);
    named_pipe_client client(name);
    client.connect(5s);
    os_pipe in, out;
    ASSERT_EQ(::write(in.write_end, "unread", 6), 6);
    in.close_write();
    relay_counters counters;
    relay_options options;
    options.counters = &counters;
    std::thread closer([&] {
        auto until = std::chrono::steady_clock::now() + 10s;
        while (counters.sent.load() < 6 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(1ms);
        server.reset();
    });
    auto result = relay(client, in.read_end, out.write_end, options);
    closer.join();
    EXPECT_EQ(result.end, relay_end::peer_closed) << result.describe(name);
    EXPECT_TRUE(result.input_ended);
    EXPECT_NE(result.describe(name).find("before it read all we sent"), std::string::npos)
        << result.describe(name);
}

TEST_F(Relay, IdleTimeoutEndsASilentRelay) {
    auto name = unique_pipe_name("idle");
    named_pipe_server server(name);
    named_pipe_client client(name);
    client.connect(5s);
    server.wait_for_connection();
    os_pipe in, out;  // nothing ever moves
    relay_options options;
    options.idle_timeout = 100ms;
    auto result = relay(client, in.read_end, out.write_end, options);
    EXPECT_EQ(result.end, relay_end::idle_timeout);
    EXPECT_NE(result.describe(name, options).find("idle timeout"), std::string::npos);
}

}  // namespace
}  // namespace npipe::test
