// npipe::relay on Windows handles: one thread copies the input to the pipe with blocking
// ReadFile calls while the calling thread copies the pipe to the output; a watchdog thread, only
// when a timeout is set, closes the pipe when one expires. A Windows pipe has no half-close: the
// end of our input is sent as an empty write (pipe_stream::shutdown_write() on a byte pipe),
// which the peer reads as the end of the stream, as .NET and C programs do.
#include "npipe/relay.hpp"

#include <pthread.h>
#include <windows.h>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/relay_ending.hpp"
#include "npipe/errors.hpp"
#include "platform/windows/win_util.hpp"

namespace npipe {
namespace {

using detail::win::unique_handle;
using detail::win::win_code;

// Pipe writes go in pieces of this size, so the write timeout sees progress at this grain (the
// pipe's buffer is 64 KiB unless asked otherwise).
constexpr std::size_t write_piece = 64 * 1024;
constexpr std::size_t chunk = 256 * 1024;
// After its data ended, how often the peer is checked for having closed the pipe entirely while
// our input has not ended (Windows has no wait for that; PeekNamedPipe tells).
constexpr DWORD peer_check_ms = 100;

using clock = std::chrono::steady_clock;

bool is_peer_gone(const std::error_code& ec) {
    return ec == errc::broken_pipe || ec == std::errc::connection_reset ||
           ec == std::errc::broken_pipe;
}

bool is_end_of_input(DWORD error) {
    return error == ERROR_BROKEN_PIPE || error == ERROR_HANDLE_EOF || error == ERROR_NO_DATA;
}

// Whether the pipe's peer has closed it entirely (not a half-close). PeekNamedPipe does not
// block and takes nothing.
bool peer_has_closed(pipe_stream& pipe) {
    HANDLE h = pipe.native_handle();
    if (!h)
        return true;
    if (::PeekNamedPipe(h, nullptr, 0, nullptr, nullptr, nullptr))
        return false;
    DWORD error = ::GetLastError();
    return error == ERROR_BROKEN_PIPE || error == ERROR_PIPE_NOT_CONNECTED ||
           error == ERROR_NO_DATA;
}

// What the threads share. The input thread may outlive relay() (a ReadFile on a console
// cannot always be cancelled): it holds the state by shared_ptr, and touches the pipe, the
// counters and the carry only under `use` while `abandoned` is false.
struct shared_state : detail::relay_ending {
    shared_state(pipe_stream& p, const relay_options& o) : pipe(p), options(o) {}
    pipe_stream& pipe;
    const relay_options options;
    std::vector<std::byte>* carry = nullptr;
    std::mutex use;
    bool abandoned = false;

    std::mutex mutex;  ///< guards relay_ending's fields and the ones below
    std::condition_variable changed;
    bool input_done = false;
    bool input_ended = false;
    bool relay_done = false;
    clock::time_point last_activity = clock::now();
    std::optional<clock::time_point> writing_since;
    std::uint64_t sent = 0, received = 0;

    // Records why the relay ends, unless a reason came first; true when this one is it.
    bool finish(relay_end why, std::error_code ec = {}, std::string_view what = {}) {
        std::lock_guard lock(mutex);
        if (!record(why, ec, what))
            return false;
        changed.notify_all();
        return true;
    }
    bool finished() {
        std::lock_guard lock(mutex);
        return end.has_value();
    }
    void moved(bool sending, std::size_t n) {
        std::lock_guard lock(mutex);
        (sending ? sent : received) += n;
        if (auto* c = options.counters)
            (sending ? c->sent : c->received) += n;
        last_activity = clock::now();
        if (sending && writing_since)
            writing_since = last_activity;
        changed.notify_all();
    }
    void set_writing(bool writing) {
        std::lock_guard lock(mutex);
        writing_since = writing ? std::optional(clock::now()) : std::nullopt;
        changed.notify_all();
    }
};

// Sends `data` in pieces; false when the relay's sending is over (the reason is recorded).
bool send_chunk(std::span<const std::byte> data, shared_state& s) {
    s.set_writing(true);
    std::error_code ec;
    while (!data.empty()) {
        auto piece = data.first(std::min(data.size(), write_piece));
        s.pipe.write(piece, ec);
        if (ec)
            break;
        s.moved(true, piece.size());
        data = data.subspan(piece.size());
    }
    s.set_writing(false);
    if (!ec)
        return true;
    if (ec == errc::operation_aborted) {
        s.finish(relay_end::cancelled);
    } else if (is_peer_gone(ec)) {
        if (s.carry)
            s.carry->assign(data.begin(), data.end());
        s.finish(relay_end::peer_closed);
    } else {
        s.finish(relay_end::failed, ec, "write to the pipe");
    }
    return false;
}

void input_to_pipe(HANDLE input, std::shared_ptr<shared_state> state) {
    shared_state& s = *state;
    auto done = [&s] {
        std::lock_guard lock(s.mutex);
        s.input_done = true;
        s.changed.notify_all();
    };
    {
        std::lock_guard use(s.use);
        if (s.carry && !s.carry->empty()) {
            std::vector<std::byte> pending;
            pending.swap(*s.carry);
            if (!send_chunk(pending, s))
                return done();
        }
    }
    std::vector<std::byte> buffer(chunk);
    for (;;) {
        DWORD n = 0;
        BOOL ok = ::ReadFile(input, buffer.data(), static_cast<DWORD>(buffer.size()), &n, nullptr);
        DWORD error = ok ? 0 : ::GetLastError();
        std::lock_guard use(s.use);
        if (s.abandoned || s.finished())
            break;
        if (error != 0 && !is_end_of_input(error)) {
            s.finish(relay_end::failed, win_code(error), "read from the input");
            break;
        }
        if (n == 0) {
            {
                std::lock_guard lock(s.mutex);
                s.input_ended = true;
            }
            std::error_code ec;
            if (s.pipe.can_write()) {
                try {
                    s.pipe.shutdown_write();
                } catch (const pipe_error&) {
                    // The peer is gone already, or a message pipe (no stand-in for a
                    // half-close): the pipe's side of the story tells.
                }
            }
            break;
        }
        if (!send_chunk(std::span(buffer.data(), n), s))
            break;
    }
    done();
}

// Closes the pipe when a timeout of the options expires, until the relay is done.
void watch_timeouts(shared_state& s) {
    std::unique_lock lock(s.mutex);
    const auto idle = s.options.idle_timeout, write = s.options.write_timeout;
    while (!s.relay_done && !s.end) {
        auto now = clock::now();
        auto deadline = clock::time_point::max();
        std::optional<relay_end> expired;
        if (idle.count() > 0) {
            deadline = s.last_activity + idle;
            if (now >= deadline)
                expired = relay_end::idle_timeout;
        }
        if (write.count() > 0 && s.writing_since) {
            auto write_deadline = *s.writing_since + write;
            if (now >= write_deadline)
                expired = relay_end::write_timeout;
            deadline = std::min(deadline, write_deadline);
        }
        if (expired) {
            s.end = expired;
            lock.unlock();
            s.pipe.close();  // wakes both directions' blocked calls
            return;
        }
        if (deadline == clock::time_point::max())
            s.changed.wait(lock);
        else
            s.changed.wait_until(lock, deadline);
    }
}

void pipe_to_output(HANDLE output, shared_state& s) {
    std::vector<std::byte> buffer(chunk);
    for (;;) {
        std::error_code ec;
        auto n = s.pipe.read(buffer, ec);
        if (ec) {
            if (ec == errc::operation_aborted)
                s.finish(relay_end::cancelled);
            else if (is_peer_gone(ec))
                s.finish(relay_end::peer_closed);
            else
                s.finish(relay_end::failed, ec, "read from the pipe");
            return;
        }
        if (n == 0) {
            if (!s.pipe.can_read() && !s.finished())
                s.finish(relay_end::cancelled);  // closed by another thread
            return;
        }
        for (std::size_t off = 0; off < n;) {
            DWORD wrote = 0;
            if (!::WriteFile(output, buffer.data() + off, static_cast<DWORD>(n - off), &wrote,
                             nullptr)) {
                // Nobody takes the rest: stop both directions, and let the peer know by closing.
                DWORD error = ::GetLastError();
                bool gone = error == ERROR_BROKEN_PIPE || error == ERROR_NO_DATA;
                if (gone ? s.finish(relay_end::output_closed)
                         : s.finish(relay_end::failed, win_code(error), "write to the output"))
                    s.pipe.close();
                return;
            }
            off += wrote;
        }
        s.moved(false, n);
    }
}

// After the pipe's data has ended: our input may still have bytes for a peer that only ended
// its own data, so wait for the input to end, unless the relay has ended otherwise or the peer
// has closed the pipe entirely and nobody would ever read our input.
void wait_for_input_side(shared_state& s) {
    std::unique_lock lock(s.mutex);
    while (!s.input_done && !s.end) {
        if (s.changed.wait_for(lock, std::chrono::milliseconds(peer_check_ms),
                               [&s] { return s.input_done || s.end.has_value(); }))
            break;
        lock.unlock();
        bool gone = peer_has_closed(s.pipe);
        lock.lock();
        if (gone && !s.input_done && !s.end)
            s.end = relay_end::peer_closed;
    }
}

// Stops the input thread: it touches nothing of ours from now on. A thread blocked in ReadFile
// is woken with CancelSynchronousIo; one that cannot be (some consoles) is left to end by
// itself when its read returns, holding only the shared state.
void stop_input(std::thread& sender, HANDLE sender_handle, shared_state& s) {
    bool failed = false;
    {
        std::lock_guard lock(s.mutex);
        failed = s.end == relay_end::failed;
    }
    if (failed)
        s.pipe.close();  // a write of the input thread's may be waiting on a stuck peer
    {
        std::lock_guard use(s.use);
        s.abandoned = true;
    }
    std::unique_lock lock(s.mutex);
    for (int attempt = 0; attempt < 20 && !s.input_done; ++attempt) {
        lock.unlock();
        if (sender_handle)
            ::CancelSynchronousIo(sender_handle);
        lock.lock();
        s.changed.wait_for(lock, std::chrono::milliseconds(10), [&s] { return s.input_done; });
    }
    bool ended = s.input_done;
    lock.unlock();
    if (ended)
        sender.join();
    else
        sender.detach();
}

}  // namespace

relay_result relay(pipe_stream& pipe, pipe_stream::native_handle_type input,
                   pipe_stream::native_handle_type output, const relay_options& options,
                   std::vector<std::byte>* carry) {
    auto state = std::make_shared<shared_state>(pipe, options);
    shared_state& s = *state;
    s.carry = carry;
    std::thread watchdog;
    if (options.idle_timeout.count() > 0 || options.write_timeout.count() > 0)
        watchdog = std::thread(watch_timeouts, std::ref(s));
    bool sending = pipe.can_write();
    std::thread sender;
    unique_handle sender_handle;
    if (sending) {
        sender = std::thread(input_to_pipe, input, state);
        HANDLE h = nullptr;
        // The thread's own handle, for CancelSynchronousIo (std::thread's is winpthreads').
        if (::DuplicateHandle(::GetCurrentProcess(), pthread_gethandle(sender.native_handle()),
                              ::GetCurrentProcess(), &h, THREAD_TERMINATE, FALSE, 0))
            sender_handle.reset(h);
    }
    if (pipe.can_read()) {
        pipe_to_output(output, s);
        if (s.finished() && sending)
            stop_input(sender, sender_handle.get(), s);
    }
    if (sender.joinable()) {
        wait_for_input_side(s);
        std::unique_lock lock(s.mutex);
        bool input_done = s.input_done;
        lock.unlock();
        if (input_done)
            sender.join();
        else
            stop_input(sender, sender_handle.get(), s);
    }
    std::lock_guard use(s.use);
    s.abandoned = true;
    std::unique_lock lock(s.mutex);
    s.relay_done = true;
    s.changed.notify_all();
    lock.unlock();
    if (watchdog.joinable())
        watchdog.join();

    lock.lock();
    return s.result(s.input_ended, s.sent, s.received);
}

}  // namespace npipe
