// What the portable core asks of the platform it runs on. Each platform (src/platform/<name>/)
// implements these; the core never includes a platform header.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "core/transport.hpp"
#include "npipe/options.hpp"
#include "npipe/pipe_stream.hpp"

namespace npipe::detail::platform {

/// An OS handle: a file descriptor on POSIX (a HANDLE on Windows).
using handle = pipe_stream::native_handle_type;
inline constexpr handle invalid_handle = invalid_native_handle;

/// A wake-up a thread blocked in wait() can be woken by, from any thread (an eventfd on Linux).
class wake_event {
  public:
    wake_event();  ///< throws std::system_error when the system cannot make one
    ~wake_event();
    wake_event(const wake_event&) = delete;
    wake_event& operator=(const wake_event&) = delete;

    /// Wakes every wait on this event, now and later (until clear()).
    void signal() noexcept;
    /// Consumes the signals so far: waits block again.
    void clear() noexcept;
    handle native() const noexcept { return handle_; }

  private:
    handle handle_;
};

enum class wait_result { ready, woken, timed_out };

/// Blocks until `h` is readable (skipped when invalid), `wake` is signalled, or the deadline
/// passes. Interrupted waits resume. ec is set only when the wait itself fails.
wait_result wait(const wake_event& wake, handle h,
                 std::optional<std::chrono::steady_clock::time_point> deadline,
                 std::error_code& ec) noexcept;

/// How many CPUs are online (1 makes spinning pointless: the peer cannot run meanwhile).
unsigned online_cpus() noexcept;

/// This machine's name ("" when unknown).
std::string host_name();

/// Whether `peer` is the user this process runs as (current_user_only).
bool is_current_user(const peer_credentials& peer) noexcept;

/// The user name of `peer` ("" when the system has none).
std::string user_name(const peer_credentials& peer);

/// What one connect attempt found.
enum class connect_status {
    connected,
    retry,       ///< no server yet, or its backlog is full: .NET's clients wait and retry
    wrong_type,  ///< a server is there, of the other transmission mode
    failed,      ///< ec says why
};

/// One connect attempt to the local endpoint (a socket path), as a connection of `mode`'s kind
/// (byte: a stream, message: records), with options' buffer sizes. Never blocks on a full
/// backlog (that is `retry`). The transport returned blocks; a caller may make it non-blocking.
std::shared_ptr<transport> connect(const std::string& endpoint, transmission_mode mode,
                                   const pipe_options& options, connect_status& status,
                                   std::error_code& ec) noexcept;

/// Wakes a waiting client when something appears where its server's endpoint goes (inotify on
/// the socket's directory on Linux).
class endpoint_watch {
  public:
    virtual ~endpoint_watch() = default;
    /// Readable when something changed.
    virtual handle native() const noexcept = 0;
    /// Consumes the changes seen so far.
    virtual void drain() noexcept = 0;
};
/// Null when the place cannot be watched (its directory may not exist yet): the client's
/// backoff alone paces it then.
std::unique_ptr<endpoint_watch> watch_endpoint(const std::string& endpoint) noexcept;

/// A server's listening endpoint, shared by its instances.
class listener {
  public:
    /// Removes the endpoint (if it is still ours).
    virtual ~listener() = default;
    /// Readable when a client is queued.
    virtual handle native() const noexcept = 0;

    enum class accept_status {
        accepted,
        none_queued,       ///< another instance took it, or it gave up: wait again
        out_of_resources,  ///< no handle free: the client stays queued; pause, then retry
        failed,
    };
    /// What one wait for a client sleeps on: readable when a client is queued or when the
    /// endpoint may have been taken over (replaced() says): a .NET server created without
    /// FirstPipeInstance unlinks a live server's socket file and binds its own.
    class accept_wait {
      public:
        virtual ~accept_wait() = default;
        virtual handle native() const noexcept = 0;
        /// Whether the endpoint no longer leads to this listener (consumes the changes seen).
        virtual bool replaced() noexcept = 0;
    };
    /// Starts one wait. The watch behind it is the listener's, shared by every wait, so a
    /// wait costs no descriptor of its own; replaced() is safe from any thread.
    virtual std::unique_ptr<accept_wait> begin_wait() = 0;

    /// Takes one queued client without blocking, with options' buffer sizes applied.
    virtual std::shared_ptr<transport> accept(const pipe_options& options, accept_status& status,
                                              std::error_code& ec) noexcept = 0;
};

/// Creates the listening endpoint of a server of `mode` (options give its permissions). Never
/// takes a live server's name; `why` explains failures the code alone does not (an unsafe
/// directory, another user's socket).
std::unique_ptr<listener> listen(const std::string& endpoint, transmission_mode mode,
                                 const pipe_options& options, std::error_code& ec,
                                 std::string& why);

}  // namespace npipe::detail::platform
