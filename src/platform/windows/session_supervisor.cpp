// session_supervisor on Windows (its portable part: core/session_supervisor.cpp). The command never
// gets the connection's own handle: npipe's server instances are overlapped (FILE_FLAG_OVERLAPPED,
// so that close() can cancel a blocked read), and a program doing plain synchronous
// ReadFile/WriteFile on an overlapped handle (any C runtime's stdio, cmd.exe, findstr) gets
// undefined results; and even a synchronous instance would serialise the command's reads and writes
// (one file object for stdin and stdout), so a command with a reader and a writer thread would
// deadlock. Each session instead gets two anonymous pipes (CreatePipe: synchronous handles, as a
// shell's `|` gives), and two relay threads copy between them and our own duplicate of the
// connection. The connection ends when the command's output does (it exited, or closed its stdout),
// after the last byte of it.
//
// Processes are watched with a thread-pool wait each (RegisterWaitForSingleObject) that wakes
// one watcher thread, which reaps, reports and forgets them, so active() drops without polling.
#include "npipe/session_supervisor.hpp"

#include <pthread.h>
#include <windows.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/session_supervisor_impl.hpp"
#include "npipe/errors.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe {

namespace {

using detail::win::unique_handle;

// The POSIX signal the end of the grace period and kill_all() stand for: child_process::kill
// terminates the process with exit code 128 + 9, what a shell reports for SIGKILL.
constexpr int kill_signal = 9;

constexpr DWORD chunk = 64 * 1024;
// The anonymous pipes' buffer: as a Linux pipe's (0 is taken literally by some systems).
constexpr DWORD pipe_buffer = 64 * 1024;

unique_handle make_event(bool manual_reset) {
    unique_handle event(::CreateEventW(nullptr, manual_reset, FALSE, nullptr));
    if (!event)
        throw std::system_error(detail::win::last_error(), "supervise sessions: create an event");
    return event;
}

bool is_set(HANDLE event) noexcept {
    return ::WaitForSingleObject(event, 0) == WAIT_OBJECT_0;
}

// A real handle of a std::thread (winpthreads'), for CancelSynchronousIo.
unique_handle thread_handle(std::thread& t) {
    HANDLE h = nullptr;
    ::DuplicateHandle(::GetCurrentProcess(), pthread_gethandle(t.native_handle()),
                      ::GetCurrentProcess(), &h, THREAD_TERMINATE, FALSE, 0);
    return unique_handle(h);
}

// Wakes `thread` out of a synchronous ReadFile/WriteFile on an anonymous pipe until `done` is
// set. Such a call ends by itself once the other end closes, which the command's exit does; the
// cancel covers a grandchild that keeps the other end open.
void cancel_until(HANDLE thread, HANDLE done) {
    while (::WaitForSingleObject(done, 10) == WAIT_TIMEOUT) {
        if (thread)
            ::CancelSynchronousIo(thread);
    }
}

// One overlapped ReadFile or WriteFile on the connection, given up when one of `stop` is set.
// The Win32 error (0 on success, ERROR_MORE_DATA for part of a message) and the bytes moved.
DWORD connection_io(HANDLE connection, bool write, std::byte* data, DWORD size, HANDLE event,
                    std::initializer_list<HANDLE> stop, DWORD& done) noexcept {
    done = 0;
    OVERLAPPED ov{};
    ov.hEvent = event;
    BOOL ok = write ? ::WriteFile(connection, data, size, nullptr, &ov)
                    : ::ReadFile(connection, data, size, nullptr, &ov);
    DWORD error = ok ? 0 : ::GetLastError();
    if (error != 0 && error != ERROR_IO_PENDING && error != ERROR_MORE_DATA)
        return error;
    if (error == ERROR_IO_PENDING) {
        HANDLE waits[3] = {event};
        DWORD count = 1;
        for (HANDLE h : stop)
            waits[count++] = h;
        if (::WaitForMultipleObjects(count, waits, FALSE, INFINITE) != WAIT_OBJECT_0)
            ::CancelIoEx(connection, &ov);
    }
    return ::GetOverlappedResult(connection, &ov, &done, TRUE) ? 0 : ::GetLastError();
}

// The copy between one client and its command (the comment at the top says why).
struct session_relay {
    unique_handle connection;    ///< our duplicate of the connection's handle (overlapped)
    unique_handle child_input;   ///< the write end of the command's stdin
    unique_handle child_output;  ///< the read end of the command's stdout
    unique_handle input_ended = make_event(true);  ///< set: stop feeding the command (stop())
    unique_handle abort = make_event(true);        ///< set: the relay ends now
    unique_handle input_done = make_event(true);   ///< set by the input thread as it ends
    unique_handle finished = make_event(true);     ///< set by the output thread as it ends
    HANDLE wake = nullptr;                         ///< the supervisor's watcher, told at the end
    unique_handle input_io = make_event(true), output_io = make_event(true);  ///< overlapped I/O
    std::vector<std::byte> input_buffer = std::vector<std::byte>(chunk);
    std::vector<std::byte> output_buffer = std::vector<std::byte>(chunk);
    std::thread input, output;
    unique_handle input_thread, output_thread;

    // The client's bytes to the command's stdin, until the client ends its data or leaves,
    // stop(), or the end of the relay; then the command reads the end of its input.
    void feed_command() noexcept {
        while (!is_set(input_ended.get()) && !is_set(abort.get())) {
            DWORD n = 0;
            DWORD error = connection_io(connection.get(), false, input_buffer.data(), chunk,
                                        input_io.get(), {input_ended.get(), abort.get()}, n);
            // 0 bytes: the client's half-close (an empty write), as npipe and .NET read it.
            if ((error != 0 && error != ERROR_MORE_DATA) || n == 0)
                break;
            if (!write_all(child_input.get(), input_buffer.data(), n))
                break;  // the command no longer reads its input
        }
        child_input.reset();
        ::SetEvent(input_done.get());
    }

    // The command's stdout to the client, until every process holding it has closed it, or the
    // client leaves; then the input side is stopped and the connection closed (our copy: the
    // client reads what is still in the pipe, then the end of the stream).
    void relay_output() noexcept {
        while (!is_set(abort.get())) {
            DWORD n = 0;
            if (!::ReadFile(child_output.get(), output_buffer.data(), chunk, &n, nullptr))
                break;  // ERROR_BROKEN_PIPE: the output's end; or cancelled
            bool sent = true;
            for (DWORD off = 0; off < n && sent;) {
                DWORD wrote = 0;
                sent = connection_io(connection.get(), true, output_buffer.data() + off, n - off,
                                     output_io.get(), {abort.get()}, wrote) == 0;
                off += wrote;
            }
            if (!sent)
                break;
        }
        // A command still writing gets ERROR_NO_DATA, as EPIPE when a client has gone on Linux.
        child_output.reset();
        ::SetEvent(abort.get());
        cancel_until(input_thread.get(), input_done.get());
        input.join();
        connection.reset();
        ::SetEvent(finished.get());
        ::SetEvent(wake);
    }

    static bool write_all(HANDLE h, const std::byte* data, DWORD size) noexcept {
        while (size > 0) {
            DWORD wrote = 0;
            if (!::WriteFile(h, data, size, &wrote, nullptr))
                return false;
            data += wrote;
            size -= wrote;
        }
        return true;
    }

    void start() {
        input = std::thread([this] { feed_command(); });
        input_thread = thread_handle(input);
        try {
            output = std::thread([this] { relay_output(); });
        } catch (...) {
            ::SetEvent(abort.get());
            cancel_until(input_thread.get(), input_done.get());
            input.join();
            throw;
        }
        output_thread = thread_handle(output);
    }

    // Ends the relay now, and waits for its threads.
    void end() noexcept {
        ::SetEvent(abort.get());
        if (output.joinable()) {
            cancel_until(output_thread.get(), finished.get());
            output.join();
        }
    }

    ~session_relay() { end(); }
};

// A thread-pool wait for a process's end, which sets the watcher's event; the destructor
// returns once no callback runs.
class exit_watch {
  public:
    exit_watch(HANDLE process, HANDLE wake) {
        if (!::RegisterWaitForSingleObject(&wait_, process, &on_exit, wake, INFINITE,
                                           WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD))
            throw std::system_error(detail::win::last_error(),
                                    "supervise sessions: watch a process");
    }
    ~exit_watch() { ::UnregisterWaitEx(wait_, INVALID_HANDLE_VALUE); }
    exit_watch(const exit_watch&) = delete;
    exit_watch& operator=(const exit_watch&) = delete;

  private:
    static void CALLBACK on_exit(void* wake, BOOLEAN) { ::SetEvent(static_cast<HANDLE>(wake)); }
    HANDLE wait_ = nullptr;
};

class windows_supervisor final : public session_supervisor::impl {
  public:
    using impl::impl;

    // A session lasts until its process has ended and its output has all gone to the
    // connection (the end of its stdout): the equivalent of a POSIX command's exit, after which
    // its output is in the socket.
    struct session {
        child_process child;
        unique_handle process;  ///< ours, SYNCHRONIZE only, for the exit watch
        std::unique_ptr<exit_watch> watch;
        std::unique_ptr<session_relay> relay;
        std::optional<exit_status> status;  ///< once the process has ended
        bool ended = false;  ///< process and relay done, being reported: erased once it has been
    };

    unique_handle wake = make_event(false);  ///< a process or relay ended, stop, or the end
    std::list<session> sessions;             ///< erased by the watcher thread only

    process_id start_session(pipe_stream::native_handle_type connection,
                             std::error_code& ec) override {
        try {
            auto relay = std::make_unique<session_relay>();
            relay->wake = wake.get();
            HANDLE h = nullptr;
            if (!::DuplicateHandle(::GetCurrentProcess(), connection, ::GetCurrentProcess(), &h, 0,
                                   FALSE, DUPLICATE_SAME_ACCESS)) {
                ec = detail::win::last_error();
                return 0;
            }
            relay->connection.reset(h);
            HANDLE in_read = nullptr, in_write = nullptr, out_read = nullptr, out_write = nullptr;
            if (!::CreatePipe(&in_read, &in_write, nullptr, pipe_buffer)) {
                ec = detail::win::last_error();
                return 0;
            }
            unique_handle child_stdin(in_read);
            relay->child_input.reset(in_write);
            if (!::CreatePipe(&out_read, &out_write, nullptr, pipe_buffer)) {
                ec = detail::win::last_error();
                return 0;
            }
            unique_handle child_stdout(out_write);
            relay->child_output.reset(out_read);

            process_options io = options.process;
            io.stdin_fd = child_stdin.get();
            io.stdout_fd = child_stdout.get();
            session s;
            s.child = spawn(argv, std::move(io));
            // Only the command holds its ends now, so its exit ends our reads and writes.
            child_stdin.reset();
            child_stdout.reset();
            process_id pid = s.child.pid();
            // The pid is not reused while s.child holds the process's handle.
            s.process.reset(::OpenProcess(SYNCHRONIZE, FALSE, static_cast<DWORD>(pid)));
            if (!s.process)
                throw std::system_error(detail::win::last_error(), "open the process");
            s.watch = std::make_unique<exit_watch>(s.process.get(), wake.get());
            relay->start();
            s.relay = std::move(relay);
            // The watcher looks again once the session is listed: its process or relay may
            // have ended (and woken it) before.
            struct wake_watcher {
                windows_supervisor& self;
                ~wake_watcher() { self.notify_watcher(); }
            } wake_after_unlock{*this};
            std::lock_guard lock(mutex);
            sessions.push_back(std::move(s));
            // stop() came while we spawned: this one ends with the others (at once when the
            // grace period is over or kill_all() was called).
            if (stopping) {
                auto& added = sessions.back();
                ::SetEvent(added.relay->input_ended.get());
                if (!kill_at) {
                    kill_one(added);
                    ::SetEvent(added.relay->abort.get());
                }
            }
            return pid;
        } catch (const std::system_error& e) {
            ec = e.code();
        } catch (const std::bad_alloc&) {
            ec = std::make_error_code(std::errc::not_enough_memory);
        }
        return 0;
    }

    std::size_t count() const noexcept override { return sessions.size(); }
    // Windows has no SIGTERM: the end of their input is what asks a filter to finish.
    void ask_all_to_end() noexcept override {
        for (auto& s : sessions)
            ::SetEvent(s.relay->input_ended.get());
    }
    // The watcher terminates them at once, and cuts their relays.
    void kill_all_now() noexcept override {
        ask_all_to_end();
        kill_at = clock::now();
    }
    void forget_ended() noexcept override {
        sessions.remove_if([](const session& s) { return s.ended; });
    }
    void notify_watcher() noexcept override { ::SetEvent(wake.get()); }

    static void kill_one(session& s) noexcept {
        try {
            s.child.kill(kill_signal);
        } catch (const std::system_error&) {
            // Ended meanwhile; the watcher reports it.
        }
    }

    void watch() {
        for (;;) {
            DWORD timeout = INFINITE;
            {
                std::lock_guard lock(mutex);
                if (quitting)
                    return;
                if (kill_at) {
                    auto left =
                        std::chrono::ceil<std::chrono::milliseconds>(*kill_at - clock::now());
                    timeout =
                        static_cast<DWORD>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
                }
            }
            ::WaitForSingleObject(wake.get(), timeout);
            reap();
        }
    }

    // Terminates what is left when the grace period is over, with its relays (output a
    // grandchild still holds is cut). Reports every session that is done (report()).
    void reap() {
        std::vector<session_relay*> cut;
        {
            std::lock_guard lock(mutex);
            if (kill_at && clock::now() >= *kill_at) {
                kill_at.reset();
                for (auto& s : sessions) {
                    kill_one(s);
                    cut.push_back(s.relay.get());
                }
            }
        }
        // Only this thread erases sessions: the relays stay.
        for (auto* r : cut)
            r->end();
        std::vector<session_end> ended;
        {
            std::lock_guard lock(mutex);
            for (auto& s : sessions) {
                if (s.ended)
                    continue;
                try {
                    if (!s.status)
                        s.status = s.child.try_wait();
                } catch (const std::system_error&) {
                    // Cannot fail on a handle we hold; looked at again on the next wake.
                }
                if (s.status && is_set(s.relay->finished.get())) {
                    s.ended = true;
                    ended.push_back(session_end{s.child.pid(), *s.status});
                }
            }
        }
        report(ended);
    }
};

}  // namespace

namespace detail {

// Where the command's program is, as CreateProcessW will look for it (SearchPathW: the
// application's directory, the current one, the system's, then %PATH%; ".exe" added to a name
// without an extension). 0, or the errno the start would most likely fail with.
int find_program(const std::string& name) {
    if (name.empty())
        return ENOENT;
    auto wide = detail::win::widen(name);
    std::wstring found(MAX_PATH, L'\0');
    for (;;) {
        DWORD n = ::SearchPathW(nullptr, wide.c_str(), L".exe", static_cast<DWORD>(found.size()),
                                found.data(), nullptr);
        if (n == 0)
            return ENOENT;
        if (n < found.size()) {
            found.resize(n);
            break;
        }
        found.resize(n);
    }
    DWORD attributes = ::GetFileAttributesW(found.c_str());
    if (attributes == INVALID_FILE_ATTRIBUTES)
        return ENOENT;
    return (attributes & FILE_ATTRIBUTE_DIRECTORY) ? EACCES : 0;
}

}  // namespace detail

std::unique_ptr<session_supervisor::impl> detail::make_supervisor(std::vector<std::string> argv,
                                                                  supervisor_options options) {
    auto p = std::make_unique<windows_supervisor>(std::move(argv), std::move(options));
    p->watcher = std::thread([raw = p.get()] { raw->watch(); });
    return p;
}

}  // namespace npipe
