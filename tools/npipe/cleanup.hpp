// Socket files removed when SIGINT, SIGTERM or SIGHUP ends the process, for the commands whose
// server blocks in calls a signal cannot cleanly interrupt (chat, demo, bench).
#pragma once

#include <string>

namespace npipe::cli {

/// While alive, SIGINT, SIGTERM and SIGHUP remove the socket file at `path` (if it is still
/// the file that was there at construction: same device and inode) and end the process with
/// 128 + the signal's number (130 for SIGINT). Construct it once the server has created the
/// file. The handler is installed on first use and stays; up to 8 paths at once.
class remove_on_signal {
  public:
    explicit remove_on_signal(const std::string& path);
    ~remove_on_signal();
    remove_on_signal(const remove_on_signal&) = delete;
    remove_on_signal& operator=(const remove_on_signal&) = delete;

  private:
    int slot_ = -1;
};

/// Holds SIGINT, SIGTERM and SIGHUP back (in this thread) from construction until release() or
/// destruction, with remove_on_signal's handler installed: create it before the server's socket
/// and release it once remove_on_signal has the path, so a signal that comes in between removes
/// the socket too instead of killing the process with it still there.
class stop_signals_held {
  public:
    stop_signals_held();
    ~stop_signals_held() { release(); }
    stop_signals_held(const stop_signals_held&) = delete;
    stop_signals_held& operator=(const stop_signals_held&) = delete;

    /// Lets the held signals through (a pending one is handled now). Idempotent.
    void release() noexcept;

  private:
    bool held_ = false;
};

}  // namespace npipe::cli
