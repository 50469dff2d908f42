// npipe::asio on Windows: the same API as on Linux over overlapped named pipe handles on Asio's
// I/O completion port. An echo server on one thread serving 200 clients at once, native message
// boundaries across partial reads, close() and cancellation, connect timeouts and retries,
// max_instances as Windows counts instances (across processes).
#include <windows.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/asio/timeout.hpp"
#include "npipe/npipe.hpp"
#include "support/test_support.hpp"
#include "win_test_support.hpp"

namespace {

using namespace std::chrono_literals;
namespace na = npipe::asio;
using npipe::transmission_mode;
using npipe::test::pattern;
using npipe::test::unique_pipe_name;

// Runs `io` until `done` or a generous deadline (a hung operation fails the test instead of
// hanging the suite).
template <class Done>
void run_until(::asio::io_context& io, Done done, std::chrono::seconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped())
            io.restart();
        io.run_one_for(50ms);
    }
    ASSERT_TRUE(done()) << "timed out";
}

// One echo session: sends back what it reads until the end of the stream.
struct echo_session : std::enable_shared_from_this<echo_session> {
    explicit echo_session(na::pipe_stream p, int& live, int& most)
        : pipe(std::move(p)), live(live), most(most) {
        most = std::max(most, ++live);
    }
    ~echo_session() { --live; }
    void read() {
        pipe.async_read_some(::asio::buffer(buffer),
                             [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                 if (ec)
                                     return;
                                 ::asio::async_write(self->pipe, ::asio::buffer(self->buffer, n),
                                                     [self](std::error_code ec, std::size_t) {
                                                         if (!ec)
                                                             self->read();
                                                     });
                             });
    }
    na::pipe_stream pipe;
    std::array<char, 4096> buffer{};
    int& live;
    int& most;
};

TEST(AsioWin, EchoServesTwoHundredClientsOnOneThread) {
    constexpr int clients = 200;
    constexpr std::size_t size = 8192;
    auto name = unique_pipe_name("echo");
    // The server: one io_context, run by this thread only.
    ::asio::io_context server_io;
    na::named_pipe_acceptor acceptor(server_io, name);
    int accepted = 0, live = 0, most = 0;
    std::function<void()> accept_next = [&] {
        acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
            if (ec)
                return;
            ++accepted;
            std::make_shared<echo_session>(std::move(p), live, most)->read();
            accept_next();
        });
    };
    accept_next();

    // The clients: async ones on an io_context of their own, on another thread. Each connects,
    // sends its own pattern and reads the echo back before it closes.
    std::atomic<int> intact{0}, failed{0};
    std::thread client_thread([&] {
        ::asio::io_context io;
        struct client {
            explicit client(::asio::io_context& io, const std::string& name, int i)
                : pipe(io, name),
                  out(pattern(size, static_cast<std::uint32_t>(i + 10))),
                  in(size, '\0') {}
            na::named_pipe_client pipe;
            std::string out, in;
        };
        std::vector<std::unique_ptr<client>> all;
        for (int i = 0; i < clients; ++i) {
            all.push_back(std::make_unique<client>(io, name, i));
            auto& c = *all.back();
            c.pipe.async_connect(60s, [&](std::error_code ec) {
                if (ec) {
                    ADD_FAILURE() << "connect: " << ec.message();
                    ++failed;
                    return;
                }
                ::asio::async_write(c.pipe, ::asio::buffer(c.out),
                                    [](std::error_code, std::size_t) {});
                ::asio::async_read(c.pipe, ::asio::buffer(c.in),
                                   [&](std::error_code ec, std::size_t) {
                                       if (!ec && c.in == c.out)
                                           ++intact;
                                       else
                                           ++failed;
                                       c.pipe.close();
                                   });
            });
        }
        io.run_for(150s);
    });
    run_until(
        server_io, [&] { return intact + failed == clients; }, 150s);
    client_thread.join();
    EXPECT_EQ(intact, clients);
    EXPECT_EQ(accepted, clients);
    EXPECT_GT(most, 1) << "the sessions never overlapped";
    // Every session ends when its client closes.
    run_until(server_io, [&] { return live == 0; });
}

// A connected pair on one io_context: an acceptor's pipe and a client.
struct pair {
    pair(::asio::io_context& io, transmission_mode mode = transmission_mode::byte,
         int max_instances = npipe::max_allowed_server_instances)
        : name(unique_pipe_name("pair")),
          acceptor(io, name, npipe::pipe_direction::in_out, max_instances, mode),
          client(io, name) {
        bool accepted = false, connected = false;
        acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
            EXPECT_FALSE(ec) << ec.message();
            server.emplace(std::move(p));
            accepted = true;
        });
        client.async_connect(10s, [&](std::error_code ec) {
            EXPECT_FALSE(ec) << ec.message();
            connected = true;
        });
        run_until(io, [&] { return accepted && connected; });
    }
    std::string name;
    na::named_pipe_acceptor acceptor;
    na::named_pipe_client client;
    std::optional<na::pipe_stream> server;
};

TEST(AsioWin, MessageBoundariesSurvivePartialReads) {
    ::asio::io_context io;
    pair p(io, transmission_mode::message);
    ASSERT_EQ(p.client.transmission_mode(), transmission_mode::message);
    ASSERT_EQ(p.server->read_mode(), transmission_mode::message);
    // Messages of several sizes, one longer than a read's 64 KiB chunk, one sent from two
    // buffers (gathered into one WriteFile), and an empty one.
    std::vector<std::string> messages = {pattern(10, 1), pattern(5000, 2), std::string(),
                                         pattern(200000, 3), pattern(3, 4)};
    // One write at a time, chained: a message larger than the pipe's buffer completes only as
    // the reader takes it.
    std::size_t written = 0;
    std::array<::asio::const_buffer, 2> halves;
    std::function<void()> write_next = [&] {
        const auto& m = messages[written];
        halves = {::asio::buffer(m.data(), m.size() / 2),
                  ::asio::buffer(m.data() + m.size() / 2, m.size() - m.size() / 2)};
        p.client.async_write_message(halves, [&](std::error_code ec, std::size_t n) {
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(n, messages[written].size());
            if (++written < messages.size() && !ec)
                write_next();
        });
    };
    write_next();
    // Read back with a 1000-byte buffer: each message arrives in parts, the last of each
    // complete, never two messages in one read.
    std::vector<char> buffer(1000);
    for (const auto& m : messages) {
        std::string got;
        bool complete = false;
        while (!complete) {
            bool done = false;
            p.server->async_read_some(::asio::buffer(buffer),
                                      [&](std::error_code ec, std::size_t n) {
                                          EXPECT_FALSE(ec) << ec.message();
                                          got.append(buffer.data(), n);
                                          done = true;
                                      });
            run_until(io, [&] { return done; });
            complete = p.server->is_message_complete();
        }
        EXPECT_EQ(got.size(), m.size());
        EXPECT_TRUE(got == m);
    }
    run_until(io, [&] { return written == messages.size(); });
}

TEST(AsioWin, ReadMessageWholeTooLargeAndDynamic) {
    ::asio::io_context io;
    pair p(io, transmission_mode::message);
    auto big = pattern(100000, 7), small = pattern(100, 8), next = pattern(70000, 9);
    std::vector<const std::string*> messages = {&big, &small, &next};
    std::size_t written = 0;
    std::function<void()> write_next = [&] {
        p.client.async_write_message(::asio::buffer(*messages[written]),
                                     [&](std::error_code ec, std::size_t) {
                                         EXPECT_FALSE(ec) << ec.message();
                                         if (++written < messages.size() && !ec)
                                             write_next();
                                     });
    };
    write_next();
    // Too large for the buffer: skipped and reported; the next one arrives intact.
    std::vector<char> buffer(1000);
    std::error_code first;
    std::size_t n = 0;
    bool done = false;
    p.server->async_read_message(::asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        first = ec;
        done = true;
    });
    run_until(io, [&] { return done; });
    EXPECT_EQ(first, npipe::errc::message_too_large);
    done = false;
    p.server->async_read_message(::asio::buffer(buffer), [&](std::error_code ec, std::size_t m) {
        EXPECT_FALSE(ec) << ec.message();
        n = m;
        done = true;
    });
    run_until(io, [&] { return done; });
    EXPECT_EQ(std::string(buffer.data(), n), small);
    // A dynamic buffer grows to the message.
    std::string dynamic = "x";
    done = false;
    p.server->async_read_message(::asio::dynamic_buffer(dynamic),
                                 [&](std::error_code ec, std::size_t m) {
                                     EXPECT_FALSE(ec) << ec.message();
                                     n = m;
                                     done = true;
                                 });
    run_until(io, [&] { return done; });
    EXPECT_EQ(n, next.size());
    EXPECT_TRUE(dynamic == "x" + next);
    EXPECT_EQ(written, messages.size());
    // The peer's end: end of stream.
    p.client.close();
    done = false;
    p.server->async_read_message(::asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        EXPECT_EQ(ec, ::asio::error::eof) << ec.message();
        done = true;
    });
    run_until(io, [&] { return done; });
}

// A message read cancelled after part of the message came gives up that message: the next read
// gets the message after it.
TEST(AsioWin, AMessageReadCancelledInsideAMessageSkipsItsRest) {
    ::asio::io_context io;
    pair p(io, transmission_mode::message);
    auto big = pattern(200000, 5), next = pattern(10, 6);
    std::size_t written = 0;
    p.client.async_write_message(::asio::buffer(big), [&](std::error_code ec, std::size_t) {
        EXPECT_FALSE(ec) << ec.message();
        ++written;
        p.client.async_write_message(::asio::buffer(next), [&](std::error_code ec, std::size_t) {
            EXPECT_FALSE(ec) << ec.message();
            ++written;
        });
    });
    io.poll();  // the big message's WriteFile is in the pipe
    std::string first;
    std::error_code first_ec;
    bool done = false;
    ::asio::cancellation_signal signal;
    p.server->async_read_message(
        ::asio::dynamic_buffer(first),
        ::asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::size_t) {
            first_ec = ec;
            done = true;
        }));
    // Its first ReadFile found the message's start in the pipe and took a part of it.
    signal.emit(::asio::cancellation_type::terminal);
    run_until(io, [&] { return done; });
    EXPECT_EQ(first_ec, ::asio::error::operation_aborted) << first_ec.message();
    EXPECT_TRUE(first.empty());
    std::string second;
    done = false;
    p.server->async_read_message(::asio::dynamic_buffer(second),
                                 [&](std::error_code ec, std::size_t) {
                                     EXPECT_FALSE(ec) << ec.message();
                                     done = true;
                                 });
    run_until(io, [&] { return done && written == 2; });
    EXPECT_TRUE(second == next) << "got " << second.size() << " bytes";
}

// The synchronous client and the asynchronous server speak the same native messages.
TEST(AsioWin, ASyncClientTalksToAnAsyncMessageServer) {
    ::asio::io_context io;
    auto name = unique_pipe_name("sync");
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out,
                                     npipe::max_allowed_server_instances,
                                     transmission_mode::message);
    std::optional<na::pipe_stream> server;
    std::string message;
    int echoed = 0;
    std::function<void()> echo = [&] {
        message.clear();
        server->async_read_message(
            ::asio::dynamic_buffer(message), [&](std::error_code ec, std::size_t) {
                if (ec)
                    return;
                server->async_write_message(::asio::buffer(message),
                                            [&](std::error_code ec, std::size_t) {
                                                EXPECT_FALSE(ec) << ec.message();
                                                ++echoed;
                                                echo();
                                            });
            });
    };
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        server.emplace(std::move(p));
        echo();
    });
    const std::vector<std::string> sent = {pattern(1, 1), pattern(100000, 2), pattern(300, 3)};
    std::vector<std::string> back;
    std::thread client_thread([&] {
        npipe::named_pipe_client client(name);
        client.connect(10s);
        client.set_read_mode(transmission_mode::message);
        for (const auto& m : sent) {
            client.write(npipe::test::pipe_io::bytes(m));
            std::string in;
            std::vector<char> buffer(4096);
            do {
                auto n = client.read(std::as_writable_bytes(std::span(buffer)));
                in.append(buffer.data(), n);
            } while (!client.is_message_complete());
            back.push_back(in);
        }
    });
    run_until(io, [&] { return echoed == static_cast<int>(sent.size()); });
    client_thread.join();
    ASSERT_EQ(back.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i)
        EXPECT_TRUE(back[i] == sent[i]) << "message " << i;
}

TEST(AsioWin, CloseFromTheSameIoContextAbortsPendingReadAndAccept) {
    ::asio::io_context io;
    pair p(io);
    std::error_code read_ec, accept_ec;
    bool read_done = false, accept_done = false;
    std::vector<char> buffer(16);
    p.server->async_read_some(::asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        read_ec = ec;
        read_done = true;
    });
    p.acceptor.async_accept([&](std::error_code ec, na::pipe_stream) {
        accept_ec = ec;
        accept_done = true;
    });
    ::asio::post(io, [&] {
        p.server->close();
        p.acceptor.close();
    });
    run_until(io, [&] { return read_done && accept_done; });
    EXPECT_EQ(read_ec, ::asio::error::operation_aborted) << read_ec.message();
    EXPECT_EQ(accept_ec, ::asio::error::operation_aborted) << accept_ec.message();
    EXPECT_FALSE(p.acceptor.is_open());
    // The client sees the end of the stream.
    bool eof = false;
    p.client.async_read_some(::asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        EXPECT_EQ(ec, ::asio::error::eof) << ec.message();
        eof = true;
    });
    run_until(io, [&] { return eof; });
}

// shutdown_write() on a byte pipe is the synchronous pipe's half-close (an empty write): the
// other direction stays open, and the peer reads the end of the stream.
TEST(AsioWin, ShutdownWriteEndsThePeersStreamAndKeepsTheOtherDirection) {
    ::asio::io_context io;
    pair p(io);
    p.client.shutdown_write();
    std::string reply = "still here";
    std::vector<char> buffer(reply.size());
    ::asio::async_write(*p.server, ::asio::buffer(reply), [](std::error_code, std::size_t) {});
    bool done = false;
    ::asio::async_read(p.client, ::asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        EXPECT_FALSE(ec) << ec.message();
        done = true;
    });
    run_until(io, [&] { return done; });
    EXPECT_EQ(std::string(buffer.data(), buffer.size()), reply);
    NPIPE_SKIP_ON_WINE("an empty write on a byte pipe is dropped, so the half-close never arrives");
    done = false;
    p.server->async_read_some(::asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        EXPECT_EQ(ec, ::asio::error::eof) << ec.message();
        done = true;
    });
    run_until(io, [&] { return done; });
}

TEST(AsioWin, ATimedOutReadLeavesThePipeUsable) {
    ::asio::io_context io;
    pair p(io);
    std::vector<char> buffer(16);
    std::error_code first;
    bool done = false;
    na::async_with_timeout(
        io.get_executor(), 50ms,
        [&](auto token) { return p.server->async_read_some(::asio::buffer(buffer), token); },
        [&](std::error_code ec, std::size_t) {
            first = ec;
            done = true;
        });
    run_until(io, [&] { return done; });
    EXPECT_EQ(first, npipe::errc::timed_out) << first.message();
    // Per-operation cancellation took back the ReadFile alone: the next read gets the bytes.
    std::string hello = "hello";
    ::asio::async_write(p.client, ::asio::buffer(hello), [](std::error_code, std::size_t) {});
    std::size_t n = 0;
    done = false;
    ::asio::async_read(p.server.value(), ::asio::buffer(buffer, hello.size()),
                       [&](std::error_code ec, std::size_t m) {
                           EXPECT_FALSE(ec) << ec.message();
                           n = m;
                           done = true;
                       });
    run_until(io, [&] { return done; });
    EXPECT_EQ(std::string(buffer.data(), n), hello);
}

// A new client of `name` connects and `acceptor` accepts it.
void expect_accepts_a_client(::asio::io_context& io, na::named_pipe_acceptor& acceptor,
                             const std::string& name) {
    na::named_pipe_client client(io, name);
    bool accepted = false, connected = false;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream) {
        EXPECT_FALSE(ec) << ec.message();
        accepted = true;
    });
    client.async_connect(20s, [&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        connected = true;
    });
    run_until(io, [&] { return accepted && connected; });
}

TEST(AsioWin, AnAcceptTimesOutAndTheAcceptorGoesOn) {
    ::asio::io_context io;
    auto name = unique_pipe_name("accept");
    na::named_pipe_acceptor acceptor(io, name);
    std::error_code first;
    bool done = false;
    acceptor.async_accept(50ms, [&](std::error_code ec, na::pipe_stream) {
        first = ec;
        done = true;
    });
    run_until(io, [&] { return done; });
    EXPECT_EQ(first, npipe::errc::timed_out) << first.message();
    expect_accepts_a_client(io, acceptor, name);
}

TEST(AsioWin, ConnectTimesOutWithNoServer) {
    ::asio::io_context io;
    na::named_pipe_client client(io, unique_pipe_name("none"));
    std::error_code result;
    bool done = false;
    auto start = std::chrono::steady_clock::now();
    client.async_connect(200ms, [&](std::error_code ec) {
        result = ec;
        done = true;
    });
    run_until(io, [&] { return done; });
    EXPECT_EQ(result, npipe::errc::timed_out) << result.message();
    EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    EXPECT_FALSE(client.is_open());
}

TEST(AsioWin, ConnectWaitsForAServerThatAppearsLater) {
    ::asio::io_context io;
    auto name = unique_pipe_name("later");
    na::named_pipe_client client(io, name);
    std::optional<na::named_pipe_acceptor> acceptor;
    bool connected = false, accepted = false;
    client.async_connect([&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        connected = true;
    });
    ::asio::steady_timer later(io, 100ms);
    later.async_wait([&](std::error_code) {
        acceptor.emplace(io, name);
        acceptor->async_accept([&](std::error_code ec, na::pipe_stream) {
            EXPECT_FALSE(ec) << ec.message();
            accepted = true;
        });
    });
    run_until(io, [&] { return connected && accepted; });
}

// A Win32 handle closed with its scope (null or INVALID_HANDLE_VALUE: none).
class owned_handle {
  public:
    explicit owned_handle(HANDLE h) noexcept : h_(h == INVALID_HANDLE_VALUE ? nullptr : h) {}
    owned_handle(const owned_handle&) = delete;
    owned_handle& operator=(const owned_handle&) = delete;
    ~owned_handle() { reset(); }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    void reset() noexcept {
        if (h_)
            ::CloseHandle(std::exchange(h_, nullptr));
    }

  private:
    HANDLE h_;
};

// Creates an instance of the pipe at `path` as a plain Win32 server does (no npipe), with
// nMaxInstances `max`; INVALID_HANDLE_VALUE with the error in `error` when refused.
HANDLE win32_instance(const std::string& path, DWORD max, DWORD& error,
                      DWORD type = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE) {
    HANDLE h = ::CreateNamedPipeA(path.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                  type | PIPE_WAIT, max, 4096, 4096, 0, nullptr);
    error = h == INVALID_HANDLE_VALUE ? ::GetLastError() : 0;
    return h;
}

// What this system lacks of Windows' instance counting, with plain Win32 calls only (npipe
// plays no part): a second instance past nMaxInstances refused with ERROR_PIPE_BUSY, a client
// refused with ERROR_PIPE_BUSY while the only instance is connected, the place of a server
// handle closed while its client's is still open freed at once. Empty when nothing is lacking.
std::string instance_counting_gap() {
    auto path = npipe::pipe_path(unique_pipe_name("count"));
    DWORD error = 0;
    owned_handle first(win32_instance(path, 1, error));
    if (!first)
        return "CreateNamedPipe failed with error " + std::to_string(error);
    owned_handle second(win32_instance(path, 1, error));
    if (second)
        return "a second instance past nMaxInstances 1 was created";
    if (error != ERROR_PIPE_BUSY)
        return "a second instance past nMaxInstances 1 failed with error " + std::to_string(error) +
               ", not ERROR_PIPE_BUSY";
    owned_handle client(::CreateFileA(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                                      OPEN_EXISTING, 0, nullptr));
    if (!client)
        return "a client cannot open the listening instance (error " +
               std::to_string(::GetLastError()) + ")";
    owned_handle busy(::CreateFileA(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                                    OPEN_EXISTING, 0, nullptr));
    error = busy ? 0 : ::GetLastError();
    if (error != ERROR_PIPE_BUSY)
        return "a second client of the only instance saw error " + std::to_string(error) +
               ", not ERROR_PIPE_BUSY";
    first.reset();
    owned_handle again(win32_instance(path, 1, error));
    if (!again)
        return "the place of a closed server instance is not freed while its client's handle is "
               "open (error " +
               std::to_string(error) + ")";
    return {};
}

// Tests of Windows' own instance counting run where the system has it: under Wine, whatever it
// lacks skips the test with the gap named; on Windows a gap fails it.
#define NPIPE_NEEDS_INSTANCE_COUNTING()                                                 \
    do {                                                                                \
        if (auto gap = instance_counting_gap(); !gap.empty()) {                         \
            if (const char* wine = npipe::test::windows::wine_version())                \
                GTEST_SKIP() << "Wine " << wine << " does not count pipe instances as " \
                             << "Windows does: " << gap;                                \
            FAIL() << gap;                                                              \
        }                                                                               \
    } while (0)

TEST(AsioWin, MaxInstancesKeepsTheNextClientBusyUntilAPipeCloses) {
    NPIPE_NEEDS_INSTANCE_COUNTING();
    ::asio::io_context io;
    pair p(io, transmission_mode::byte, 1);
    // The one instance is connected: Windows itself turns the next client away.
    owned_handle busy(::CreateFileA(p.acceptor.socket_path().c_str(), GENERIC_READ | GENERIC_WRITE,
                                    0, nullptr, OPEN_EXISTING, 0, nullptr));
    DWORD error = busy ? 0 : ::GetLastError();
    EXPECT_EQ(error, static_cast<DWORD>(ERROR_PIPE_BUSY))
        << "a second client got an instance past max_instances";
    // An npipe client waits through its timeout. An accept meanwhile waits for the slot.
    std::error_code waited, accept_waited;
    bool done = false, accept_done = false;
    na::named_pipe_client early(io, p.name);
    early.async_connect(300ms, [&](std::error_code ec) {
        waited = ec;
        done = true;
    });
    p.acceptor.async_accept(300ms, [&](std::error_code ec, na::pipe_stream) {
        accept_waited = ec;
        accept_done = true;
    });
    run_until(io, [&] { return done && accept_done; });
    EXPECT_EQ(waited, npipe::errc::timed_out) << waited.message();
    EXPECT_EQ(accept_waited, npipe::errc::timed_out)
        << "a second pipe was accepted past max_instances";
    // A client waiting in its connect gets in once the pipe is closed, and is accepted.
    na::named_pipe_client second(io, p.name);
    bool connected = false;
    second.async_connect(20s, [&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        connected = true;
    });
    std::optional<na::pipe_stream> accepted;
    p.acceptor.async_accept([&](std::error_code ec, na::pipe_stream s) {
        EXPECT_FALSE(ec) << ec.message();
        accepted.emplace(std::move(s));
    });
    io.poll();
    EXPECT_FALSE(connected || accepted) << "an instance past max_instances";
    p.server->close();
    run_until(io, [&] { return connected && accepted.has_value(); });
    std::string hi = "hi";
    std::vector<char> buffer(2);
    ::asio::async_write(second, ::asio::buffer(hi), [](std::error_code, std::size_t) {});
    done = false;
    ::asio::async_read(*accepted, ::asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        EXPECT_FALSE(ec) << ec.message();
        done = true;
    });
    run_until(io, [&] { return done; });
    EXPECT_EQ(std::string(buffer.data(), 2), hi);
}

TEST(AsioWin, AnotherServerOfTheNameIsRefusedPastMaxInstances) {
    NPIPE_NEEDS_INSTANCE_COUNTING();
    ::asio::io_context io;
    pair p(io, transmission_mode::message, 1);
    // A Win32 server in another process cannot add an instance: Windows refuses it.
    {
        npipe::anonymous_pipe_server errors(npipe::pipe_direction::in);
        npipe::process_options options;
        options.stderr_fd = errors.client_handle();
        npipe::test::windows::peer_process other({"server", p.name}, "win32_peer.exe", options);
        errors.dispose_local_copy_of_client_handle();
        auto status = other.wait(20s);
        ASSERT_TRUE(status.has_value()) << "another server got an instance past max_instances";
        EXPECT_NE(*status, 0ul);
        auto said = npipe::test::pipe_io::read_to_end(errors);
        EXPECT_NE(said.find("CreateNamedPipe failed (error 231)"), std::string::npos)
            << "not ERROR_PIPE_BUSY: " << said;
    }
    // Nor in this process, nor npipe's synchronous server.
    DWORD error = 0;
    owned_handle extra(win32_instance(p.acceptor.socket_path(), 1, error,
                                      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE));
    EXPECT_EQ(error, static_cast<DWORD>(ERROR_PIPE_BUSY)) << "an instance past max_instances";
    try {
        npipe::named_pipe_server sync(p.name, npipe::pipe_direction::in_out, 1,
                                      transmission_mode::message);
        ADD_FAILURE() << "a synchronous server took the name";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), npipe::errc::name_in_use) << e.what();
    }
    // With the pipe closed the acceptor has no instance, and the name is free: a server that
    // takes it meanwhile is reported by the next accept (its instance would be the name's first).
    p.server->close();
    owned_handle squatter(win32_instance(p.acceptor.socket_path(), 1, error,
                                         PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE));
    ASSERT_TRUE(squatter) << "error " << error;
    std::error_code taken;
    bool done = false;
    p.acceptor.async_accept([&](std::error_code ec, na::pipe_stream) {
        taken = ec;
        done = true;
    });
    run_until(io, [&] { return done; });
    EXPECT_EQ(taken, npipe::errc::name_taken_over) << taken.message();
    // Once it is gone the acceptor serves again.
    squatter.reset();
    expect_accepts_a_client(io, p.acceptor, p.name);
}

TEST(AsioWin, WaitReadCompletesWhenDataArrivesAndCanBeCancelled) {
    ::asio::io_context io;
    pair p(io);
    bool ready = false;
    p.server->async_wait(::asio::socket_base::wait_read, [&](std::error_code ec) {
        EXPECT_EQ(ec, ::asio::error::operation_aborted) << ec.message();
        ready = true;
    });
    io.poll();
    EXPECT_FALSE(ready);
    p.server->cancel();
    run_until(io, [&] { return ready; });
    // A timed-out wait took back its own ReadFile only: the next wait sees the data.
    std::error_code timed;
    bool done = false;
    ready = false;
    na::async_with_timeout(
        io.get_executor(), 50ms,
        [&](auto token) { return p.server->async_wait(::asio::socket_base::wait_read, token); },
        [&](std::error_code ec) {
            timed = ec;
            done = true;
        });
    run_until(io, [&] { return done; });
    EXPECT_EQ(timed, npipe::errc::timed_out) << timed.message();
    p.server->async_wait(::asio::socket_base::wait_read, [&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        ready = true;
    });
    std::string data = "abc";
    ::asio::async_write(p.client, ::asio::buffer(data), [](std::error_code, std::size_t) {});
    run_until(io, [&] { return ready; });
    EXPECT_EQ(p.server->available(), data.size());
}

}  // namespace
