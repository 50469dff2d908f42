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

}  // namespace npipe::cli
