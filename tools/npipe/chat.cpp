// `npipe chat server [NAME]` and `npipe chat client [NAME]`: a message-mode chat in the spirit of
// the seed series' part 4. Each stdin line is sent as one message; each message received is
// read in 5-byte chunks until is_message_complete() and printed on its own line. Both sides
// may send at any time; the chat ends for both when either side sends the message "x" or its
// stdin ends. Messages go to stdout, everything else to stderr.
#ifdef _WIN32
#include <windows.h>
#else
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "cleanup.hpp"
#include "commands.hpp"
#include "flags.hpp"
#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"

namespace npipe::cli {
namespace {

// Part 4 reads each message in small pieces to show is_message_complete() at work.
constexpr std::size_t chunk_size = 5;
const std::string end_message = "x";

#ifdef _WIN32
// Raised when the chat is over, to wake the stdin reader: the thread that constructs it, blocked
// in ReadFile (a console or pipe read cannot also wait on an event), is woken with
// CancelSynchronousIo, again until it says it is done (a cancel that comes just before its
// read begins finds nothing to cancel).
class end_signal {
  public:
    end_signal() {
        ::DuplicateHandle(::GetCurrentProcess(), ::GetCurrentThread(), ::GetCurrentProcess(),
                          &reader_, THREAD_TERMINATE, FALSE, 0);
    }
    ~end_signal() {
        if (reader_)
            ::CloseHandle(reader_);
    }
    end_signal(const end_signal&) = delete;
    end_signal& operator=(const end_signal&) = delete;

    void raise() {
        over_ = true;
        while (reader_ && !reader_done_) {
            ::CancelSynchronousIo(reader_);
            ::Sleep(20);
        }
    }
    bool over() const { return over_; }
    /// Called by the reader as it stops reading stdin.
    void reader_done() { reader_done_ = true; }

  private:
    HANDLE reader_ = nullptr;
    std::atomic<bool> over_{false};
    std::atomic<bool> reader_done_{false};
};
#else
// An eventfd, owned: raised when the chat is over, to wake the stdin reader.
class end_signal {
  public:
    end_signal() : fd_(::eventfd(0, EFD_CLOEXEC)) {
        if (fd_ < 0)
            throw exit_request{1, std::string("eventfd: ") + std::strerror(errno)};
    }
    ~end_signal() { ::close(fd_); }
    end_signal(const end_signal&) = delete;
    end_signal& operator=(const end_signal&) = delete;

    void raise() {
        over_ = true;
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
    }
    bool over() const { return over_; }
    int fd() const { return fd_; }

  private:
    int fd_;
    std::atomic<bool> over_{false};
};
#endif

struct chat_state {
    end_signal end;
    std::atomic<int> status{0};

    void fail(const std::string& what) {
        std::cerr << "npipe chat: " << what << '\n';
        status = 1;
    }
};

// Prints each message as it completes; ends the chat at "x" or when the peer goes away.
void receive_messages(pipe_stream& pipe, chat_state& chat) {
    std::string message;
    std::byte chunk[chunk_size];
    for (;;) {
        std::error_code ec;
        std::size_t n = pipe.read(chunk, ec);
        if (chat.end.over())
            break;  // we ended the chat and closed the pipe: nothing more to print
        if (ec == errc::message_too_large) {
            std::cerr << "npipe chat: a message over the size limit was skipped\n";
            message.clear();
            continue;
        }
        if (ec) {
            if (ec != errc::broken_pipe)
                chat.fail("pipe '" + pipe.pipe_name() + "': read: " + ec.message());
            break;
        }
        if (n == 0 && pipe.end_of_stream())
            break;
        message.append(reinterpret_cast<const char*>(chunk), n);
        if (!pipe.is_message_complete())
            continue;
        std::cout << message << '\n' << std::flush;
        if (message == end_message)
            break;
        message.clear();
    }
    chat.end.raise();
}

// Sends each stdin line as a message until "x" (sent too), the end of stdin, or the end of
// the chat. Returns when the chat is over.
void send_lines(pipe_stream& pipe, chat_state& chat) {
    std::string pending;
    char buffer[4096];
    auto send = [&](std::string line) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        std::error_code ec;
        pipe.write(std::as_bytes(std::span(line.data(), line.size())), ec);
        if (ec && !chat.end.over()) {
            if (ec != errc::broken_pipe)
                chat.fail("pipe '" + pipe.pipe_name() + "': write: " + ec.message());
            return false;
        }
        return !ec && line != end_message;
    };
    for (;;) {
#ifdef _WIN32
        if (chat.end.over())
            return;
        DWORD got = 0;
        if (!::ReadFile(::GetStdHandle(STD_INPUT_HANDLE), buffer, sizeof buffer, &got, nullptr)) {
            DWORD error = ::GetLastError();
            if (chat.end.over())
                return;  // woken by the end of the chat
            if (error != ERROR_BROKEN_PIPE && error != ERROR_HANDLE_EOF) {
                chat.fail("read from stdin: " + std::system_category().message(error));
                return;
            }
            got = 0;
        }
        if (chat.end.over())
            return;
        auto n = static_cast<std::ptrdiff_t>(got);
#else
        pollfd fds[2] = {{0, POLLIN, 0}, {chat.end.fd(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            chat.fail(std::string("poll: ") + std::strerror(errno));
            return;
        }
        if (fds[1].revents)
            return;
        ssize_t n = ::read(0, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            chat.fail(std::string("read from stdin: ") + std::strerror(errno));
            return;
        }
#endif
        if (n == 0) {
            if (!pending.empty())
                send(std::move(pending));  // a last line without a newline
            return;
        }
        pending.append(buffer, static_cast<std::size_t>(n));
        for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
            std::string line = pending.substr(0, eol);
            pending.erase(0, eol + 1);
            if (!send(std::move(line)))
                return;
        }
    }
}

// Runs the chat on a connected message pipe in message read mode; returns the exit status.
int chat(pipe_stream& pipe) {
    chat_state state;
    std::thread receiver([&] { receive_messages(pipe, state); });
    send_lines(pipe, state);
#ifdef _WIN32
    // Our side is done (or the other side is). Closing wakes our receiver (a Windows pipe may be
    // closed from another thread), and the peer reads the end after the messages already sent.
    state.end.reader_done();
    state.end.raise();
    pipe.close();
    receiver.join();
    return state.status;
#else
    // Our side is done (or the other side is). shutdown(2) wakes our receiver, and the peer
    // reads end of stream after the messages already sent, which ends the chat there too. It
    // leaves the pipe object alone: closing it while the receiver thread is inside read() would
    // change its state under that thread.
    state.end.raise();
    ::shutdown(pipe.native_handle(), SHUT_RDWR);
    receiver.join();
    pipe.close();
    return state.status;
#endif
}

}  // namespace

void add_chat_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "chat",
        "Message-mode chat: each line is a message, each message received is a line; "
        "either side ends it with the message x or the end of its input");
    cmd->require_subcommand(1);
    cmd->footer(R"(Examples:
  npipe chat server room          in one terminal
  npipe chat client room          in another; type lines, x ends the chat for both)");

    static std::string server_name = "test-pipe";
    auto* server = cmd->add_subcommand(
        "server", "Create a message-mode pipe, wait for one client, then chat with it");
    server->add_option("NAME", server_name, "Pipe name")->capture_default_str();
    server->callback([] {
        stop_signals_held hold;
        named_pipe_server pipe(server_name, pipe_direction::in_out, 1, transmission_mode::message);
        remove_on_signal cleanup(pipe.socket_path());
        hold.release();
        std::cerr << "npipe chat: waiting for a client on pipe '" << server_name << "'\n";
        pipe.wait_for_connection();
        std::cerr << "npipe chat: client connected; type messages, x to end\n";
        if (int status = chat(pipe))
            throw exit_request{status, ""};
    });

    static std::string client_name = "test-pipe";
    static std::chrono::milliseconds timeout{-1};
    auto* client =
        cmd->add_subcommand("client", "Connect to a message-mode pipe and chat with its server");
    client->add_option("NAME", client_name, "Pipe name")->capture_default_str();
    add_duration_option(client, "--timeout", timeout, bare_unit::milliseconds,
                        "Give up connecting after this long (default: wait)");
    client->callback([] {
        named_pipe_client pipe(client_name);
        pipe.connect(timeout);
        if (pipe.transmission_mode() != transmission_mode::message)
            throw exit_request{1, "pipe '" + client_name +
                                      "' is a byte-mode pipe; chat needs a message-mode server "
                                      "such as `npipe chat server`"};
        pipe.set_read_mode(transmission_mode::message);  // clients start in byte read mode
        std::cerr << "npipe chat: connected; type messages, x to end\n";
        if (int status = chat(pipe))
            throw exit_request{status, ""};
    });
}

}  // namespace npipe::cli
