// Message-mode named pipes: each semantic of issue 3 in its own test, plus the wire format
// (docs/protocol.md) checked with raw sockets and a .NET (Mono) byte-mode client.
#include <gtest/gtest.h>
#ifndef _WIN32
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "npipe/pipe_name.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using npipe::errc;
using npipe::named_pipe_client;
using npipe::named_pipe_server;
using npipe::pipe_direction;
using npipe::pipe_options;
using npipe::transmission_mode;
using npipe::test::error_of;
using npipe::test::unique_pipe_name;

std::span<const std::byte> as_bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// A message-mode server and a connected client.
struct message_pair {
    explicit message_pair(const std::string& tag, pipe_options server_options = {},
                          pipe_options client_options = {})
        : name(unique_pipe_name(tag)),
          server(name, pipe_direction::in_out, 1, transmission_mode::message, server_options),
          client(".", name, pipe_direction::in_out, client_options) {
        client.connect(5s);
        server.wait_for_connection(5s);
    }
    std::string name;
    named_pipe_server server;
    named_pipe_client client;
};

// The cases every transport must pass: each runs on the socket and on shared memory.
class MessageModeOn : public ::testing::TestWithParam<npipe::test::transport_kind> {
  protected:
    // `options` with this instance's transport.
    pipe_options on(pipe_options options = {}) const {
        options.shared_memory = GetParam() == npipe::test::transport_kind::shared_memory;
        return options;
    }
};
NPIPE_ON_EVERY_TRANSPORT(MessageModeOn);

// Runs `body` (writes) on a thread. join() reports what the body threw. When a failed assertion
// leaves the test early, the destructor closes the pipes, so a writer blocked on a full
// socket wakes, and joins: no test ends with a thread still running.
class writer_thread {
  public:
    writer_thread(message_pair& p, std::function<void()> body)
        : pair_(p), thread_([this, body = std::move(body)] {
              try {
                  body();
              } catch (const std::exception& e) {
                  error_ = e.what();
              }
          }) {}
    ~writer_thread() {
        if (thread_.joinable()) {
            pair_.client.close();
            pair_.server.close();
            thread_.join();
        }
    }
    void join() {
        thread_.join();
        EXPECT_EQ(error_, "") << "the writer failed";
    }

  private:
    message_pair& pair_;
    std::string error_;
    std::thread thread_;
};

struct chunk {
    std::string data;
    bool complete;
    bool operator==(const chunk&) const = default;
};

std::ostream& operator<<(std::ostream& os, const chunk& c) {
    return os << "{\"" << c.data << "\", " << (c.complete ? "complete" : "partial") << "}";
}

chunk read_chunk(npipe::pipe_stream& pipe, std::size_t size) {
    std::string buffer(size, '\0');
    auto n = pipe.read(std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
    buffer.resize(n);
    return {buffer, pipe.is_message_complete()};
}

// Reads one whole message in message read mode with reads of `size` bytes.
std::string read_message(npipe::pipe_stream& pipe, std::size_t size) {
    std::string message;
    std::string buffer(size, '\0');
    do {
        auto n = pipe.read(std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
        if (n == 0 && pipe.end_of_stream())
            throw std::runtime_error("end of stream inside read_message");
        message.append(buffer, 0, n);
    } while (!pipe.is_message_complete());
    return message;
}

#ifndef _WIN32
// The wire checks below are of npipe's own framing over Unix sockets; on Windows a message is
// a native pipe message (tests/windows checks that wire with a plain Win32 peer).
// A raw AF_UNIX socket at a pipe's path, to see the wire without npipe in the way.
struct raw_socket {
    raw_socket(const std::string& path, int type) : fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            error = errno;
    }
    ~raw_socket() { ::close(fd); }
    raw_socket(const raw_socket&) = delete;
    raw_socket& operator=(const raw_socket&) = delete;

    void send_record(const std::vector<std::uint8_t>& bytes) const {
        ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(bytes.size()));
    }
    std::vector<std::uint8_t> receive_record() const {
        std::vector<std::uint8_t> buffer(1 << 17);
        ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        buffer.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
        return buffer;
    }

    int fd;
    int error = 0;
};

std::vector<std::uint8_t> frame(const std::string& payload, bool more = false,
                                std::uint32_t claimed = UINT32_MAX) {
    std::uint32_t length =
        claimed == UINT32_MAX ? static_cast<std::uint32_t>(payload.size()) : claimed;
    std::uint32_t h = length | (more ? 0x80000000u : 0u);
    std::vector<std::uint8_t> out;
    out.reserve(4 + payload.size());
    for (int shift = 0; shift < 32; shift += 8)
        out.push_back(static_cast<std::uint8_t>(h >> shift));
    for (char c : payload)
        out.push_back(static_cast<std::uint8_t>(c));
    return out;
}

#endif  // !_WIN32

// --- Discovery and modes -------------------------------------------------------------------

TEST(MessageMode, ClientDiscoversAMessagePipeAndStartsInByteReadMode) {
    auto name = unique_pipe_name("discover");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    named_pipe_client client(name);
    EXPECT_EQ(error_of([&] { (void)client.transmission_mode(); }), errc::not_connected);
    EXPECT_EQ(error_of([&] { client.set_read_mode(transmission_mode::message); }),
              errc::not_connected);
    EXPECT_EQ(server.transmission_mode(), transmission_mode::message);
    EXPECT_EQ(server.read_mode(), transmission_mode::message);

    client.connect(5s);
    server.wait_for_connection(5s);
    EXPECT_EQ(client.transmission_mode(), transmission_mode::message);
    EXPECT_EQ(client.read_mode(), transmission_mode::byte);  // as on Windows
    client.set_read_mode(transmission_mode::message);
    EXPECT_EQ(client.read_mode(), transmission_mode::message);
    EXPECT_TRUE(client.is_message_complete());
}

TEST(MessageMode, ByteServerAndItsClientsStayByteAndRefuseMessageReadMode) {
    auto name = unique_pipe_name("bytepipe");
    named_pipe_server server(name);
    named_pipe_client client(name);
    client.connect(5s);
    server.wait_for_connection(5s);
    EXPECT_EQ(server.transmission_mode(), transmission_mode::byte);
    EXPECT_EQ(client.transmission_mode(), transmission_mode::byte);
    EXPECT_EQ(error_of([&] { client.set_read_mode(transmission_mode::message); }),
              errc::not_supported);
    EXPECT_EQ(error_of([&] { server.set_read_mode(transmission_mode::message); }),
              errc::not_supported);
    client.set_read_mode(transmission_mode::byte);  // allowed, changes nothing
    EXPECT_TRUE(client.is_message_complete());
}

TEST(MessageMode, AllInstancesOfANameHaveTheSameTransmissionMode) {
    auto name = unique_pipe_name("mixed");
    named_pipe_server first(name, pipe_direction::in_out, 2, transmission_mode::message);
    EXPECT_EQ(error_of([&] { named_pipe_server second(name, pipe_direction::in_out, 2); }),
              errc::invalid_argument);
    named_pipe_server second(name, pipe_direction::in_out, 2, transmission_mode::message);
    EXPECT_EQ(second.transmission_mode(), transmission_mode::message);
}

// --- Reading messages ------------------------------------------------------------------------

TEST_P(MessageModeOn, PartialReadsReportIsMessageCompleteOnlyAtTheEnd) {
    message_pair p("partial", on(), on());
    p.client.set_read_mode(transmission_mode::message);
    p.server.write("Hello from the server");  // 21 bytes
    p.server.write("next");
    EXPECT_EQ(read_chunk(p.client, 5), (chunk{"Hello", false}));
    EXPECT_EQ(read_chunk(p.client, 5), (chunk{" from", false}));
    EXPECT_EQ(read_chunk(p.client, 5), (chunk{" the ", false}));
    EXPECT_EQ(read_chunk(p.client, 5), (chunk{"serve", false}));
    EXPECT_EQ(read_chunk(p.client, 5), (chunk{"r", true}));  // never crosses into "next"
    EXPECT_EQ(read_chunk(p.client, 5), (chunk{"next", true}));
}

TEST_P(MessageModeOn, AReadWithRoomForTheWholeMessageReturnsItWhole) {
    message_pair p("whole", on(), on());
    p.client.set_read_mode(transmission_mode::message);
    p.server.write("abc");
    p.server.write("defgh");
    EXPECT_EQ(read_chunk(p.client, 100), (chunk{"abc", true}));
    EXPECT_EQ(read_chunk(p.client, 5), (chunk{"defgh", true}));  // exact fit is complete
}

TEST_P(MessageModeOn, EmptyMessagesAreMessagesDistinctFromEndOfStream) {
    message_pair p("empty", on(), on());
    p.client.set_read_mode(transmission_mode::message);
    p.server.write("");
    p.server.write("a");
    p.server.write("");
    p.server.close();
    EXPECT_EQ(read_chunk(p.client, 10), (chunk{"", true}));
    EXPECT_FALSE(p.client.end_of_stream());
    EXPECT_EQ(read_chunk(p.client, 10), (chunk{"a", true}));
    EXPECT_EQ(read_chunk(p.client, 10), (chunk{"", true}));
    EXPECT_FALSE(p.client.end_of_stream());
    EXPECT_EQ(read_chunk(p.client, 10), (chunk{"", true}));
    EXPECT_TRUE(p.client.end_of_stream());
}

TEST_P(MessageModeOn, SixtyFourMiBMessagesArriveIntact) {
    message_pair p("large", on(), on());
    p.client.set_read_mode(transmission_mode::message);
    const std::size_t size = pipe_options::default_max_message_size;  // at the limit: allowed
    ASSERT_EQ(size, std::size_t{64} << 20);
    auto first = npipe::test::pattern(size, 7);
    auto second = npipe::test::pattern(size, 8);
    writer_thread writer(p, [&] {
        p.server.write(first);
        p.server.write(second);
    });
    // One read with room for it all returns the whole message...
    std::string whole(size + 1, '\0');
    auto n = p.client.read(std::as_writable_bytes(std::span(whole.data(), whole.size())));
    EXPECT_EQ(n, size);
    EXPECT_TRUE(p.client.is_message_complete());
    whole.resize(n);
    EXPECT_TRUE(whole == first) << "first 64 MiB message differs";
    // ...and reads of an odd size assemble the next one exactly.
    auto assembled = read_message(p.client, (1 << 20) + 3);
    writer.join();
    EXPECT_EQ(assembled.size(), size);
    EXPECT_TRUE(assembled == second) << "second 64 MiB message differs";
}

TEST_P(MessageModeOn, ByteReadModeOfAMessagePipeYieldsThePayloadBytesOfSuccessiveMessages) {
    message_pair p("byteread", on(), on());
    auto big = npipe::test::pattern(100 * 1024, 3);  // several records
    writer_thread writer(p, [&] {
        p.server.write("abc");
        p.server.write("");
        p.server.write("defg");
        p.server.write(big);
        p.server.close();
    });
    ASSERT_EQ(p.client.read_mode(), transmission_mode::byte);
    std::string stream;
    std::string buffer(7, '\0');
    for (;;) {
        auto n = p.client.read(std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
        if (n == 0)
            break;
        stream.append(buffer, 0, n);
    }
    writer.join();
    EXPECT_TRUE(p.client.end_of_stream());
    EXPECT_TRUE(stream == "abcdefg" + big) << "stream of " << stream.size() << " bytes differs";
}

TEST_P(MessageModeOn, ReadModeCanChangeInTheMiddleOfAMessage) {
    message_pair p("switch", on(), on());
    p.client.set_read_mode(transmission_mode::message);
    p.server.write("0123456789");
    p.server.write("next");
    EXPECT_EQ(read_chunk(p.client, 4), (chunk{"0123", false}));
    p.client.set_read_mode(transmission_mode::byte);
    EXPECT_EQ(read_chunk(p.client, 6), (chunk{"456789", true}));
    p.client.set_read_mode(transmission_mode::message);
    EXPECT_EQ(read_chunk(p.client, 100), (chunk{"next", true}));
}

// --- Limits ----------------------------------------------------------------------------------

TEST_P(MessageModeOn, AnOversizeWriteFailsOnTheSenderAndSendsNothing) {
    pipe_options small;
    small.max_message_size = 1000;
    message_pair p("oversend", on(small), on());
    p.client.set_read_mode(transmission_mode::message);
    EXPECT_EQ(error_of([&] { p.server.write(std::string(1001, 'x')); }), errc::message_too_large);
    std::error_code ec;
    p.server.write(as_bytes(std::string(5000, 'y')), ec);
    EXPECT_EQ(ec, errc::message_too_large);
    p.server.write(std::string(1000, 'z'));  // exactly the limit
    p.server.write("after");
    EXPECT_EQ(read_chunk(p.client, 4096), (chunk{std::string(1000, 'z'), true}));
    EXPECT_EQ(read_chunk(p.client, 4096), (chunk{"after", true}));
}

TEST_P(MessageModeOn, AnOversizeIncomingMessageIsReportedAndLaterMessagesArriveIntact) {
    pipe_options small;
    small.max_message_size = 1000;
    message_pair p("overrecv", on(),
                   on(small));  // the server may send up to 64 MiB, the client takes 1000
    p.client.set_read_mode(transmission_mode::message);
    writer_thread writer(p, [&] {
        p.server.write(std::string(5000, 'a'));  // one frame, rejected at its header
        p.server.write("after one");
        p.server.write(npipe::test::pattern(1 << 20, 5));  // many records, skipped as they come
        p.server.write("after two");
        p.server.write(std::string(1000, 'b'));  // exactly the limit
    });
    std::string buffer(64 * 1024, '\0');
    auto read = [&] {
        return p.client.read(std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
    };
    EXPECT_EQ(error_of([&] { read(); }), errc::message_too_large);
    EXPECT_TRUE(p.client.is_message_complete());
    EXPECT_EQ(read_chunk(p.client, 100), (chunk{"after one", true}));
    EXPECT_EQ(error_of([&] { read(); }), errc::message_too_large);
    EXPECT_EQ(read_chunk(p.client, 100), (chunk{"after two", true}));
    EXPECT_EQ(read_chunk(p.client, 4096), (chunk{std::string(1000, 'b'), true}));
    writer.join();
}

#ifndef _WIN32  // raw socket peers: no such peer can send a torn message to a Windows pipe
TEST(MessageMode, ALengthClaimedByAPeerIsNeverWaitedForNorAllocated) {
    auto name = unique_pipe_name("claim");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    raw_socket peer(npipe::pipe_path(name), SOCK_SEQPACKET);
    ASSERT_EQ(peer.error, 0);
    server.wait_for_connection(5s);
    // A header claiming 2 GiB - 1 with 10 bytes of it: rejected at once, without waiting for
    // (or allocating) the rest.
    peer.send_record(frame("0123456789", false, 0x7fffffff));
    auto result = std::async(std::launch::async, [&] {
        std::string buffer(100, '\0');
        std::error_code ec;
        server.read(std::as_writable_bytes(std::span(buffer.data(), buffer.size())), ec);
        return ec;
    });
    if (result.wait_for(10s) != std::future_status::ready) {
        server.close();  // unblocks the read
        FAIL() << "the read waited for the claimed bytes";
    }
    EXPECT_EQ(result.get(), errc::message_too_large);
}

TEST(MessageMode, APeerClosingInsideAMessageIsABrokenPipeNotATruncatedMessage) {
    auto name = unique_pipe_name("torn");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    {
        raw_socket peer(npipe::pipe_path(name), SOCK_SEQPACKET);
        ASSERT_EQ(peer.error, 0);
        server.wait_for_connection(5s);
        peer.send_record(frame("whole"));
        peer.send_record(frame("abc", false, 10));  // 3 of 10 bytes, then the peer is gone
    }
    EXPECT_EQ(read_chunk(server, 100), (chunk{"whole", true}));
    EXPECT_EQ(error_of([&] { read_chunk(server, 100); }), errc::broken_pipe);
    EXPECT_EQ(read_chunk(server, 100), (chunk{"", true}));
    EXPECT_TRUE(server.end_of_stream());
}

#endif  // !_WIN32

// --- Concurrency -----------------------------------------------------------------------------

TEST_P(MessageModeOn, WritesFromTwoThreadsNeverInterleaveInsideAMessage) {
    message_pair p("threads", on(), on());
    p.client.set_read_mode(transmission_mode::message);
    constexpr int per_thread = 150;
    const std::size_t sizes[] = {1, 100, 70'000, 200'000};  // the large ones span records
    auto message_for = [&](char tag, int seq) {
        std::string m(sizes[seq % 4] + 8, tag);
        std::snprintf(m.data(), 8, "%c%06d", tag, seq);
        m[7] = tag;
        return m;
    };
    std::atomic<bool> go{false};
    auto writer = [&](char tag) {
        while (!go) {
        }
        for (int i = 0; i < per_thread; ++i)
            p.server.write(message_for(tag, i));
    };
    writer_thread a(p, [&] { writer('A'); }), b(p, [&] { writer('B'); });
    go = true;
    int next[2] = {0, 0};
    std::string buffer(300'000, '\0');
    for (int received = 0; received < 2 * per_thread; ++received) {
        auto n = p.client.read(std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
        ASSERT_TRUE(p.client.is_message_complete());
        std::string m(buffer, 0, n);
        ASSERT_GE(m.size(), 8u);
        char tag = m[0];
        ASSERT_TRUE(tag == 'A' || tag == 'B') << "message starts with " << int(tag);
        int& expected = next[tag - 'A'];
        ASSERT_EQ(m, message_for(tag, expected))
            << "message " << expected << " of " << tag << " is mixed or out of order";
        ++expected;
    }
    a.join();
    b.join();
    EXPECT_EQ(next[0], per_thread);
    EXPECT_EQ(next[1], per_thread);
}

// --- The wire (docs/protocol.md) -------------------------------------------------------------

// The receive buffer is lent by the reading thread and kept by a pipe only while part of a
// record is undecoded: one thread alternating between pipes, each left inside a record of many
// coalesced messages (and inside a message larger than the read buffer), must still get every
// message of each pipe whole and in order.
TEST_P(MessageModeOn, OneThreadReadingSeveralPipesPartwayThroughRecordsKeepsEachStreamIntact) {
    pipe_options coalescing;
    coalescing.coalesce_messages = true;
    constexpr int pipes = 3, each = 400;
    std::vector<std::unique_ptr<message_pair>> pairs;
    std::vector<std::vector<std::string>> sent(pipes);
    for (int p = 0; p < pipes; ++p) {
        pairs.push_back(std::make_unique<message_pair>("lend", on(), on(coalescing)));
        for (int i = 0; i < each; ++i) {
            // Mostly small messages, many to a record, and now and then one longer than the
            // reader's buffer, read in pieces.
            sent[static_cast<std::size_t>(p)].push_back(
                i % 97 == 5 ? npipe::test::pattern(3000, static_cast<std::uint32_t>(p * each + i))
                            : "pipe " + std::to_string(p) + " message " + std::to_string(i));
            pairs.back()->client.write(as_bytes(sent[static_cast<std::size_t>(p)].back()));
        }
        pairs.back()->client.flush();
    }
    std::vector<std::size_t> next(pipes, 0);
    std::vector<std::string> partial(pipes);
    std::byte buf[1024];
    for (int turn = 0; turn < pipes * each * 8; ++turn) {
        const auto p = static_cast<std::size_t>(turn % pipes);
        if (next[p] == sent[p].size())
            continue;
        auto n = pairs[p]->server.read(buf);
        partial[p].append(reinterpret_cast<const char*>(buf), n);
        if (!pairs[p]->server.is_message_complete())
            continue;
        ASSERT_EQ(partial[p], sent[p][next[p]]) << "pipe " << p << " message " << next[p];
        partial[p].clear();
        ++next[p];
    }
    for (std::size_t p = 0; p < pipes; ++p)
        EXPECT_EQ(next[p], sent[p].size()) << "pipe " << p;
}

#ifndef _WIN32
TEST(MessageWire, MessagesAreFramesInSeqpacketRecordsOfAtMost64KiB) {
    auto name = unique_pipe_name("wire");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    auto path = npipe::pipe_path(name);
    raw_socket stream_peer(path, SOCK_STREAM);
    EXPECT_EQ(stream_peer.error, EPROTOTYPE);  // what a .NET client meets
    raw_socket peer(path, SOCK_SEQPACKET);
    ASSERT_EQ(peer.error, 0);
    server.wait_for_connection(5s);

    server.write("hi");
    EXPECT_EQ(peer.receive_record(), frame("hi"));
    server.write("");
    EXPECT_EQ(peer.receive_record(), frame(""));

    auto big = npipe::test::pattern(200'000, 9);
    std::error_code write_error;
    std::thread writer([&] { server.write(as_bytes(big), write_error); });
    std::string payload;
    std::size_t records = 0;
    bool well_formed = true;
    for (bool more = true; more && well_formed; ++records) {
        auto record = peer.receive_record();
        well_formed = record.size() >= 4 && record.size() <= 64u * 1024;
        if (!well_formed)
            break;
        std::uint32_t h =
            record[0] | record[1] << 8 | record[2] << 16 | std::uint32_t(record[3]) << 24;
        more = (h & 0x80000000u) != 0;
        well_formed = (h & 0x7fffffffu) == record.size() - 4;  // one frame per record
        payload.append(record.begin() + 4, record.end());
    }
    if (!well_formed)
        server.close();  // the writer may be blocked on a socket we no longer read
    writer.join();
    ASSERT_TRUE(well_formed) << "record " << records << " is not one frame of at most 64 KiB";
    EXPECT_FALSE(write_error) << write_error.message();
    EXPECT_GE(records, 4u);  // 200 000 bytes need at least four 64 KiB records
    EXPECT_TRUE(payload == big);

    // A record may carry several whole frames (a sender coalescing small messages).
    auto two = frame("a");
    auto second = frame("bc", true);
    auto third = frame("d");
    two.insert(two.end(), second.begin(), second.end());
    two.insert(two.end(), third.begin(), third.end());
    peer.send_record(two);
    EXPECT_EQ(read_chunk(server, 100), (chunk{"a", true}));
    EXPECT_EQ(read_chunk(server, 100), (chunk{"bcd", true}));
}

TEST(MessageWire, AByteModePipeIsStillExactlyDotNetsWire) {
    auto name = unique_pipe_name("bytewire");
    named_pipe_server server(name);
    raw_socket peer(npipe::pipe_path(name), SOCK_STREAM);
    ASSERT_EQ(peer.error, 0);
    server.wait_for_connection(5s);
    server.write("hi");
    char got[16] = {};
    EXPECT_EQ(::recv(peer.fd, got, sizeof got, 0), 2);
    EXPECT_EQ(std::string(got, 2), "hi");
}

TEST(MessageWire, ADotNetByteModeClientIsRefusedCleanlyAtConnect) {
    NPIPE_REQUIRE_MONO();
    auto exe = npipe::test::csharp_program("ByteClientToMessageServer");
    ASSERT_FALSE(exe.empty());
    auto name = unique_pipe_name("dotnet");
    named_pipe_server server(name, pipe_direction::in_out, 1, transmission_mode::message);
    // A 20 s connect timeout: a refusal must come at once, not when the timeout runs out.
    auto r = npipe::test::run(npipe::test::mono_command(exe, {name, "20000"}), {}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("refused: System.Net.Sockets.SocketException ProtocolType"),
              std::string::npos)
        << r.out << r.err;
    auto after = r.out.find("after ");
    ASSERT_NE(after, std::string::npos) << r.out;
    EXPECT_LT(std::stod(r.out.substr(after + 6)), 5.0) << "the refusal waited: " << r.out;
    // Nothing reached the server, which still serves npipe clients.
    EXPECT_EQ(error_of([&] { server.wait_for_connection(100ms); }), errc::timed_out);
    named_pipe_client client(name);
    client.connect(5s);
    server.wait_for_connection(5s);
    server.write("still fine");
    client.set_read_mode(transmission_mode::message);
    EXPECT_EQ(read_chunk(client, 100), (chunk{"still fine", true}));
}

#endif  // !_WIN32

}  // namespace
