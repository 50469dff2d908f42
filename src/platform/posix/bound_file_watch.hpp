// The takeover watch of a listening socket: notices that the file a listener bound is no longer
// the way to it.
#pragma once

#include <sys/stat.h>

#include <mutex>
#include <string>

#include "platform/posix/unique_fd.hpp"

namespace npipe::detail {

/// Notices that the socket file a listener bound is gone or is another file now. A .NET server
/// created without FirstPipeInstance unlinks a live server's file and binds its own
/// (dotnet/runtime #131203); our listener then still works but no client can reach it.
///
/// One watch serves every wait on its listener, from any thread: the synchronous server's
/// waiting instances and the asynchronous acceptor's reactor alike.
class bound_file_watch {
  public:
    /// Watches the directory of `path` (inotify, for removals and new entries) beside
    /// `listen_fd`. Without inotify, fd() is `listen_fd` and replaced() is checked only when a
    /// client arrives.
    bound_file_watch(int listen_fd, const std::string& path, const struct stat& bound);

    /// Readable when a client is queued on the listener, the directory changed, or the file
    /// was found replaced (an epoll descriptor holding all three, which a poll() or another
    /// epoll, such as Asio's reactor, can wait on). Only polled, never epoll_wait()ed: the
    /// events stay with their descriptors.
    int fd() const noexcept { return epoll_ ? epoll_.get() : listen_fd_; }

    /// Whether `path` no longer names the file we bound: it was unlinked or renamed while we
    /// watched, or another file is there now. Consumes the directory's events; once true,
    /// always true. Safe from any thread.
    bool replaced() noexcept;

    /// Whether replaced() has said so (no system call): the file at `path` is then someone
    /// else's, whatever its identity, and must be left alone.
    bool taken_over() const noexcept;

  private:
    void mark_gone() noexcept;

    int listen_fd_;
    std::string path_, file_name_;
    struct stat bound_ {};
    // The waits share the inotify descriptor: the first to read the removal event consumes it,
    // and the others, woken by it too, would find nothing to read and sleep on. `replaced_`
    // (an eventfd, signalled once and never read) keeps fd() readable for all of them.
    unique_fd inotify_, replaced_, epoll_;
    mutable std::mutex mutex_;
    bool gone_ = false;         // guarded by mutex_
    bool look_at_file_ = true;  // guarded by mutex_: an event named our file (or none watched)
};

}  // namespace npipe::detail
