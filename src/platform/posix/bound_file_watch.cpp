#include "platform/posix/bound_file_watch.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace npipe::detail {

bound_file_watch::bound_file_watch(int listen_fd, const std::string& path, const struct stat& bound)
    : listen_fd_(listen_fd), path_(path), bound_(bound) {
    auto slash = path.rfind('/');
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    file_name_ = path.substr(slash + 1);
    inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    replaced_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    // One descriptor to wait on: readable when any of ours is.
    epoll_event in{};
    in.events = EPOLLIN;
    if (!inotify_ || !replaced_ || !epoll_ ||
        ::inotify_add_watch(inotify_.get(), dir.c_str(),
                            IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                                IN_MOVE_SELF) < 0 ||
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_fd, &in) != 0 ||
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, inotify_.get(), &in) != 0 ||
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, replaced_.get(), &in) != 0) {
        // Nobody could wake on them: look at the file whenever a client arrives instead.
        epoll_.reset();
        replaced_.reset();
        inotify_.reset();
    }
}

void bound_file_watch::mark_gone() noexcept {
    gone_ = true;
    if (replaced_) {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(replaced_.get(), &one, sizeof one);
    }
}

bool bound_file_watch::replaced() noexcept {
    std::lock_guard lock(mutex_);
    // The unlink itself is the proof: a new socket at the path may get the old inode number
    // back, so comparing identities alone would miss a takeover that happened between two
    // looks.
    alignas(inotify_event) char buffer[4096];
    ssize_t n;
    while (!gone_ && inotify_ && (n = ::read(inotify_.get(), buffer, sizeof buffer)) > 0) {
        for (ssize_t at = 0; at < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
            bool ours = event->len && file_name_ == event->name;
            if ((event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) ||
                (ours && (event->mask & (IN_DELETE | IN_MOVED_FROM))))
                mark_gone();
            // Another file renamed over ours replaces it without a removal event; a lost event
            // may have been anything.
            if (ours || (event->mask & IN_Q_OVERFLOW))
                look_at_file_ = true;
            at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        }
    }
    if (gone_)
        return true;
    // With the directory watched, the file itself is looked at only when an event named it
    // (and once, for whatever happened before the watch began): a wait costs one read() then.
    if (!look_at_file_)
        return false;
    if (inotify_)
        look_at_file_ = false;
    struct stat now {};
    if (::lstat(path_.c_str(), &now) == 0) {
        if (now.st_dev != bound_.st_dev || now.st_ino != bound_.st_ino)
            mark_gone();
    } else if (errno == ENOENT || errno == ENOTDIR) {
        mark_gone();
    } else {
        look_at_file_ = true;  // could not tell: look again next time
    }
    return gone_;
}

bool bound_file_watch::taken_over() const noexcept {
    std::lock_guard lock(mutex_);
    return gone_;
}

}  // namespace npipe::detail
