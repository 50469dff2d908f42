// The Windows side of the core (core/platform.hpp): waits on events, named pipe instances
// created and connected with overlapped I/O, clients that open \\.\pipe\NAME.
#include <windows.h>
// sddl.h needs windows.h first.
#include <sddl.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "core/platform.hpp"
#include "npipe/errors.hpp"
#include "platform/windows/pipe_client.hpp"
#include "platform/windows/pipe_listener.hpp"
#include "platform/windows/win_util.hpp"
#include "transport/windows_pipe/pipe_transport.hpp"

namespace npipe::detail::platform {

using win::unique_handle;

wake_event::wake_event() : handle_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)) {
    if (!handle_)
        throw std::system_error(win::last_error(), "create wake-up event");
}

wake_event::~wake_event() {
    ::CloseHandle(handle_);
}

void wake_event::signal() noexcept {
    ::SetEvent(handle_);
}

void wake_event::clear() noexcept {
    ::ResetEvent(handle_);
}

wait_result wait(const wake_event& wake, handle h,
                 std::optional<std::chrono::steady_clock::time_point> deadline,
                 std::error_code& ec) noexcept {
    ec.clear();
    for (;;) {
        DWORD timeout = INFINITE;
        if (deadline) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(
                *deadline - std::chrono::steady_clock::now());
            timeout = static_cast<DWORD>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
        }
        HANDLE handles[2] = {wake.native(), h};
        DWORD r = ::WaitForMultipleObjects(h ? 2 : 1, handles, FALSE, timeout);
        if (r == WAIT_OBJECT_0)
            return wait_result::woken;
        if (r == WAIT_OBJECT_0 + 1)
            return wait_result::ready;
        if (r == WAIT_FAILED) {
            ec = win::last_error();
            return wait_result::ready;
        }
        // WAIT_TIMEOUT: a millisecond timer may fire a little early; the deadline decides.
        if (deadline && std::chrono::steady_clock::now() >= *deadline)
            return wait_result::timed_out;
    }
}

unsigned online_cpus() noexcept {
    DWORD n = ::GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return n > 0 ? n : 1;
}

std::string host_name() {
    wchar_t name[256];
    DWORD size = 256;
    if (!::GetComputerNameExW(ComputerNameDnsHostname, name, &size))
        return {};
    return win::narrow(std::wstring_view(name, size));
}

bool is_current_user(const peer_credentials& peer) noexcept {
    try {
        auto sid = win::interned_sid(peer.uid);
        return !sid.empty() && sid == win::current_user();
    } catch (...) {
        return false;
    }
}

std::string user_name(const peer_credentials& peer) {
    auto sid = win::interned_sid(peer.uid);
    if (sid.empty())
        return {};
    wchar_t name[256], domain[256];
    DWORD name_size = 256, domain_size = 256;
    SID_NAME_USE use;
    if (!::LookupAccountSidW(nullptr, sid.data(), name, &name_size, domain, &domain_size, &use))
        return {};
    return win::narrow(std::wstring_view(name, name_size));
}

namespace {

// A client that finds every instance busy waits this long at most inside one attempt
// (WaitNamedPipeW returns as soon as an instance is free), so close() stays prompt.
constexpr DWORD busy_wait_ms = 20;

}  // namespace

}  // namespace npipe::detail::platform

namespace npipe::detail::win {

std::shared_ptr<transport> open_client(const std::string& endpoint, bool wait_when_busy,
                                       platform::connect_status& status,
                                       std::error_code& ec) noexcept {
    using platform::connect_status;
    status = connect_status::failed;
    try {
        auto path = widen(endpoint);
        // SECURITY_IDENTIFICATION: the server may learn who we are, never act as us.
        unique_handle pipe(::CreateFileW(
            path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, nullptr));
        if (!pipe) {
            DWORD error = ::GetLastError();
            ec = win_code(error);
            if (error == ERROR_FILE_NOT_FOUND) {
                status = connect_status::retry;  // no server yet
            } else if (error == ERROR_PIPE_BUSY) {
                // Every instance is taken: sleep until one is free (or briefly), then retry.
                if (wait_when_busy)
                    ::WaitNamedPipeW(path.c_str(), platform::busy_wait_ms);
                status = connect_status::retry;
            }
            return nullptr;
        }
        DWORD flags = 0;
        if (!::GetNamedPipeInfo(pipe.get(), &flags, nullptr, nullptr, nullptr)) {
            ec = last_error();
            return nullptr;
        }
        bool message = (flags & PIPE_TYPE_MESSAGE) != 0;
        if (message) {
            DWORD read_mode = PIPE_READMODE_MESSAGE;
            if (!::SetNamedPipeHandleState(pipe.get(), &read_mode, nullptr, nullptr)) {
                ec = last_error();
                return nullptr;
            }
        }
        auto t = std::make_shared<pipe_transport>(std::move(pipe), pipe_transport::role::client,
                                                  message);
        ec.clear();
        status = connect_status::connected;
        return t;
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    } catch (const std::system_error& e) {
        ec = e.code();
    }
    return nullptr;
}

}  // namespace npipe::detail::win

namespace npipe::detail::platform {

std::shared_ptr<transport> connect(const std::string& endpoint, transmission_mode,
                                   const pipe_options&, connect_status& status,
                                   std::error_code& ec) noexcept {
    return win::open_client(endpoint, true, status, ec);
}

std::unique_ptr<endpoint_watch> watch_endpoint(const std::string&) noexcept {
    // The pipe namespace cannot be watched for a name to appear: the backoff paces the client.
    return nullptr;
}

namespace {

// The pipe's buffer quota for one direction. 0 (the system's default) is taken literally by
// Wine: every write would then wait for the reader. 64 KiB is what Linux's pipes hold.
DWORD buffer_size(std::size_t asked) {
    constexpr std::size_t default_size = std::size_t{64} << 10;
    return static_cast<DWORD>(std::min<std::size_t>(asked ? asked : default_size, MAXDWORD));
}

// Instances of one name in this process, as a socket's backlog: one instance at a time waits for
// a client with an overlapped ConnectNamedPipe; when one arrives, a thread-pool wait moves that
// instance to the queue of connected clients and opens the next, so further clients connect
// (and wait in the queue) whether or not a server is waiting. accept() takes the queue's
// front. Past `backlog` queued clients no instance is open, and clients see ERROR_PIPE_BUSY
// and retry, as on a full socket backlog. With a limit (win::listen's max_instances) the
// system counts the instances, the accepted ones included: past the limit no instance is open
// either, and one is opened again when accept() finds none.
class pipe_listener final : public listener {
  public:
    pipe_listener(std::wstring path, bool message, const pipe_options& options, int max_instances)
        : path_(std::move(path)),
          message_(message),
          in_size_(buffer_size(options.in_buffer_size)),
          out_size_(buffer_size(options.out_buffer_size)),
          max_instances_(max_instances == max_allowed_server_instances
                             ? PIPE_UNLIMITED_INSTANCES
                             : static_cast<DWORD>(max_instances)),
          kept_(std::min<std::size_t>(backlog, max_instances_)),
          first_each_(max_instances == 1),
          connect_event_(::CreateEventW(nullptr, FALSE, FALSE, nullptr)),
          ready_event_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)) {
        if (!connect_event_ || !ready_event_)
            throw std::system_error(win::last_error(), "create the listener's events");
    }

    ~pipe_listener() override {
        // Waits for a callback in progress: none runs once this returns.
        if (registered_)
            ::UnregisterWaitEx(registered_, INVALID_HANDLE_VALUE);
        std::lock_guard lock(mutex_);
        if (pending_) {
            DWORD done = 0;
            ::CancelIoEx(pending_.get(), &overlapped_);
            ::GetOverlappedResult(pending_.get(), &overlapped_, &done, TRUE);
            pending_.reset();
        }
        ready_.clear();  // queued clients read end of stream
        if (security_)
            ::LocalFree(security_);
    }

    /// Creates the first instance: FILE_FLAG_FIRST_PIPE_INSTANCE, so an existing name (another
    /// process's server) is never joined. 0 or the Win32 error.
    DWORD start(const wchar_t* sddl) {
        if (sddl && !::ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1,
                                                                            &security_, nullptr))
            return ::GetLastError();
        {
            std::lock_guard lock(mutex_);
            if (DWORD error = open_instance(true))
                return error;
        }
        if (!::RegisterWaitForSingleObject(&registered_, connect_event_.get(), &on_connect, this,
                                           INFINITE, WT_EXECUTEDEFAULT))
            return ::GetLastError();
        return 0;
    }

    handle native() const noexcept override { return ready_event_.get(); }

    class wait final : public accept_wait {
      public:
        explicit wait(HANDLE event) : event_(event) {}
        handle native() const noexcept override { return event_; }
        // The system holds the name while an instance exists: nobody can take it over.
        bool replaced() noexcept override { return false; }

      private:
        HANDLE event_;
    };

    std::unique_ptr<accept_wait> begin_wait() override {
        return std::make_unique<wait>(ready_event_.get());
    }

    std::shared_ptr<transport> accept(const pipe_options&, accept_status& status,
                                      std::error_code& ec) noexcept override {
        std::lock_guard lock(mutex_);
        ec.clear();
        if (ready_.empty()) {
            if (!pending_) {
                // No instance open (opening one failed earlier): clients cannot connect now.
                if (DWORD error = open_instance(false)) {
                    // ready_event_ stays set: the core pauses, then retries here.
                    ec = win::win_code(error);
                    if (first_each_ && (error == ERROR_ACCESS_DENIED || error == ERROR_PIPE_BUSY)) {
                        // Our only instance was gone for a moment and another server took the
                        // name (as .NET with one instance, each is a first instance).
                        ec = errc::name_taken_over;
                        status = accept_status::failed;
                        return nullptr;
                    }
                    status = error == ERROR_NO_SYSTEM_RESOURCES ||
                                     error == ERROR_NOT_ENOUGH_MEMORY || error == ERROR_PIPE_BUSY
                                 ? accept_status::out_of_resources
                                 : accept_status::failed;
                    return nullptr;
                }
            }
            if (ready_.empty()) {
                ::ResetEvent(ready_event_.get());
                status = accept_status::none_queued;  // another instance took the client
                return nullptr;
            }
        }
        try {
            auto t = std::make_shared<win::pipe_transport>(
                std::move(ready_.front()), win::pipe_transport::role::server, message_);
            ready_.erase(ready_.begin());
            if (!pending_)
                open_instance(false);  // a failure leaves the event set: the next accept retries
            if (ready_.empty() && pending_)
                ::ResetEvent(ready_event_.get());
            status = accept_status::accepted;
            return t;
        } catch (const std::bad_alloc&) {
            ec = std::make_error_code(std::errc::not_enough_memory);
        } catch (const std::system_error& e) {
            ec = e.code();
        }
        status = accept_status::failed;
        return nullptr;
    }

  private:
    static constexpr std::size_t backlog = 128;

    static void CALLBACK on_connect(void* self, BOOLEAN) {
        auto& l = *static_cast<pipe_listener*>(self);
        std::lock_guard lock(l.mutex_);
        if (!l.pending_)
            return;
        DWORD done = 0;
        if (!::GetOverlappedResult(l.pending_.get(), &l.overlapped_, &done, FALSE)) {
            if (::GetLastError() == ERROR_IO_INCOMPLETE)
                return;
            l.pending_.reset();  // the client left before it was queued
        } else {
            l.queue_pending();
        }
        if (l.room())
            l.open_instance(false);  // on failure, the next accept() retries
    }

    // mutex_ held. Whether another instance may be opened: the queue and the instance waiting
    // for a client stay within the backlog and the limit.
    bool room() const noexcept { return ready_.size() + (pending_ ? 1 : 0) < kept_; }

    // mutex_ held. The pending instance has its client: queue it for accept().
    void queue_pending() noexcept {
        try {
            ready_.push_back(std::move(pending_));
            ::SetEvent(ready_event_.get());
        } catch (const std::bad_alloc&) {
            pending_.reset();  // the client sees the pipe end
        }
    }

    // mutex_ held. Creates an instance and starts waiting for its client; 0 or the Win32 error
    // (then ready_event_ is set, so a waiting server comes to accept(), which reports or retries).
    DWORD open_instance(bool first) noexcept {
        for (;;) {
            SECURITY_ATTRIBUTES attributes{sizeof attributes, security_, FALSE};
            DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
            if (first || first_each_)
                open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
            DWORD pipe_mode = (message_ ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
                                        : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE) |
                              PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS;
            unique_handle pipe(::CreateNamedPipeW(path_.c_str(), open_mode, pipe_mode,
                                                  max_instances_, out_size_, in_size_, 0,
                                                  &attributes));
            if (!pipe) {
                DWORD error = ::GetLastError();
                if (!first)
                    ::SetEvent(ready_event_.get());
                return error;
            }
            overlapped_ = OVERLAPPED{};
            overlapped_.hEvent = connect_event_.get();
            DWORD error = ::ConnectNamedPipe(pipe.get(), &overlapped_) ? 0 : ::GetLastError();
            pending_ = std::move(pipe);
            if (error == ERROR_IO_PENDING)
                return 0;
            if (error != 0 && error != ERROR_PIPE_CONNECTED) {
                pending_.reset();
                ::SetEvent(ready_event_.get());
                return error;
            }
            // A client came between CreateNamedPipe and now: queue it, open the next one.
            ::ResetEvent(connect_event_.get());
            queue_pending();
            first = false;
            if (!room())
                return 0;
        }
    }

    std::wstring path_;
    bool message_;
    DWORD in_size_, out_size_;
    DWORD max_instances_;          ///< nMaxInstances: the system's limit, across processes
    std::size_t kept_;             ///< at most this many instances pending or queued here
    bool first_each_;              ///< one instance at most: each is created as the name's first
    unique_handle connect_event_;  ///< auto reset: the pending instance's ConnectNamedPipe
    unique_handle ready_event_;    ///< manual reset: set while `ready_` holds a client
    HANDLE registered_ = nullptr;  ///< the thread-pool wait on connect_event_
    std::mutex mutex_;
    unique_handle pending_;  ///< the instance waiting for a client
    OVERLAPPED overlapped_{};
    std::vector<unique_handle> ready_;  ///< connected instances, oldest first
    PSECURITY_DESCRIPTOR security_ = nullptr;
};

// current_user_only, as .NET's PipeOptions.CurrentUserOnly on Windows: a protected DACL whose
// only entry gives the current user full access, so no other account can open the pipe (or
// create an instance of it).
std::wstring current_user_only_sddl() {
    const auto& user = win::current_user();
    if (user.empty())
        return {};
    wchar_t* text = nullptr;
    if (!::ConvertSidToStringSidW(const_cast<BYTE*>(user.data()), &text))
        return {};
    // The owner is set too: an elevated administrator's objects are otherwise owned by the
    // Administrators group, and the client checks that the owner is its own user.
    std::wstring sid(text);
    std::wstring sddl = L"O:" + sid + L"D:P(A;;GA;;;" + sid + L")";
    ::LocalFree(text);
    return sddl;
}

}  // namespace

}  // namespace npipe::detail::platform

namespace npipe::detail::win {

std::unique_ptr<platform::listener> listen(const std::string& endpoint, transmission_mode mode,
                                           const pipe_options& options, int max_instances,
                                           std::error_code& ec, std::string& why) {
    using namespace platform;
    ec.clear();
    if (options.socket_mode || options.socket_group) {
        ec = errc::not_supported;
        why =
            "socket_mode and socket_group are POSIX-only (a Windows pipe's access is its "
            "security descriptor: use current_user_only, or accept_peer to check each client)";
        return nullptr;
    }
    auto l = std::make_unique<pipe_listener>(widen(endpoint), mode == transmission_mode::message,
                                             options, max_instances);
    std::wstring sddl;
    if (options.current_user_only) {
        sddl = current_user_only_sddl();
        if (sddl.empty()) {
            ec = last_error();
            why = "cannot read this process's user";
            return nullptr;
        }
    }
    if (DWORD error = l->start(sddl.empty() ? nullptr : sddl.c_str())) {
        if (error == ERROR_ACCESS_DENIED || error == ERROR_PIPE_BUSY) {
            ec = errc::name_in_use;
            why = "another server (in this or another process) has the name";
        } else {
            ec = win_code(error);
        }
        return nullptr;
    }
    return l;
}

}  // namespace npipe::detail::win

namespace npipe::detail::platform {

std::unique_ptr<listener> listen(const std::string& endpoint, transmission_mode mode,
                                 const pipe_options& options, std::error_code& ec,
                                 std::string& why) {
    // named_pipe_server counts its instances in this process (src/core), as .NET does on Linux.
    return win::listen(endpoint, mode, options, max_allowed_server_instances, ec, why);
}

}  // namespace npipe::detail::platform
