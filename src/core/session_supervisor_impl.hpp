// What npipe::session_supervisor is on every platform: the count of sessions, the stop state,
// the grace period's deadline and the watcher thread, and the public functions over them
// (core/session_supervisor.cpp). Each platform derives its own impl (platform/<os>/
// session_supervisor.cpp): how a session starts, how its processes are asked to end or killed,
// and the watcher thread that reaps them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "npipe/session_supervisor.hpp"

namespace npipe {

struct session_supervisor::impl {
    using clock = std::chrono::steady_clock;

    impl(std::vector<std::string> a, supervisor_options o)
        : argv(std::move(a)), options(std::move(o)) {}
    virtual ~impl() = default;
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    std::vector<std::string> argv;
    supervisor_options options;

    mutable std::mutex mutex;
    std::condition_variable changed;  ///< a session ended, or stop() was called
    bool stopping = false;
    bool quitting = false;                     ///< the destructor has waited for every session
    std::optional<clock::time_point> kill_at;  ///< the end of the grace period
    std::thread watcher;

    /// Starts a session (not stopping yet when called): the process id, or 0 with `ec` set.
    virtual process_id start_session(pipe_stream::native_handle_type connection,
                                     std::error_code& ec) = 0;
    /// mutex held: the sessions not yet reaped and reported.
    virtual std::size_t count() const noexcept = 0;
    /// mutex held: asks every session to end (stop()).
    virtual void ask_all_to_end() noexcept = 0;
    /// mutex held: kills every session now (kill_all()).
    virtual void kill_all_now() noexcept = 0;
    /// mutex held: forgets the sessions whose ends have been reported.
    virtual void forget_ended() noexcept = 0;
    /// Wakes the watcher thread: news, stop, or the end of the supervisor.
    virtual void notify_watcher() noexcept = 0;

    /// The watcher's report of the sessions that have ended, reaped but still counted: on_end
    /// for each, then they are forgotten, so whoever waits for the count to drop also sees the
    /// report. mutex not held.
    void report(const std::vector<session_end>& ended);
};

namespace detail {

/// The platform's check that argv[0] can be started: 0, or the errno the start would most
/// likely fail with (ENOENT when no such program is found).
int find_program(const std::string& name);

/// The platform's supervisor, its watcher thread running.
std::unique_ptr<session_supervisor::impl> make_supervisor(std::vector<std::string> argv,
                                                          supervisor_options options);

}  // namespace detail

}  // namespace npipe
