#include "cleanup.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <utility>

namespace npipe::cli {
namespace {

// The handler reads these with nothing but async-signal-safe calls: fixed buffers, published
// by an atomic flag written after them.
struct file_id {
    char path[4096 + 16];
    dev_t dev;
    ino_t ino;
    bool known;
};
struct slot {
    file_id socket, lock, rendezvous;
    std::atomic<bool> used{false};
};
slot slots[8];
std::mutex slots_mutex;

void unlink_if_same(const file_id& f) noexcept {
    struct stat st {};
    if (f.known && ::lstat(f.path, &st) == 0 && st.st_dev == f.dev && st.st_ino == f.ino)
        ::unlink(f.path);
}

bool identify(const std::string& path, file_id& f) noexcept {
    struct stat st {};
    f.known = path.size() < sizeof f.path && ::lstat(path.c_str(), &st) == 0;
    if (f.known) {
        std::memcpy(f.path, path.c_str(), path.size() + 1);
        f.dev = st.st_dev;
        f.ino = st.st_ino;
    }
    return f.known;
}

extern "C" void remove_and_exit(int sig) {
    // The socket first, then the liveness lock the server holds beside it (never the other way:
    // the name must not look stale while the socket is there).
    for (auto& s : slots) {
        if (s.used.load()) {
            unlink_if_same(s.rendezvous);
            unlink_if_same(s.socket);
            unlink_if_same(s.lock);
        }
    }
    ::_exit(128 + sig);
}

void install_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_handler = remove_and_exit;
        sigfillset(&action.sa_mask);
        for (int sig : {SIGINT, SIGTERM, SIGHUP})
            ::sigaction(sig, &action, nullptr);
    });
}

}  // namespace

remove_on_signal::remove_on_signal(const std::string& path) {
    file_id socket{}, lock{};
    if (!identify(path, socket))
        return;
    // The server's liveness lock (docs/security.md): ours while the server lives.
    identify(path + ".npipe-lock", lock);
    // The shared-memory rendezvous (docs/protocol.md) of a server that offers it.
    file_id rendezvous{};
    identify(path + ".npipe-shm", rendezvous);
    install_once();
    std::lock_guard guard(slots_mutex);
    for (int i = 0; i < 8; ++i) {
        if (!slots[i].used.load()) {
            slots[i].socket = socket;
            slots[i].lock = lock;
            slots[i].rendezvous = rendezvous;
            slots[i].used.store(true);
            slot_ = i;
            return;
        }
    }
}

stop_signals_held::stop_signals_held() {
    install_once();
    sigset_t stop;
    sigemptyset(&stop);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&stop, sig);
    held_ = ::pthread_sigmask(SIG_BLOCK, &stop, nullptr) == 0;
}

void stop_signals_held::release() noexcept {
    if (!std::exchange(held_, false))
        return;
    sigset_t stop;
    sigemptyset(&stop);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&stop, sig);
    ::pthread_sigmask(SIG_UNBLOCK, &stop, nullptr);
}

remove_on_signal::~remove_on_signal() {
    if (slot_ >= 0) {
        std::lock_guard lock(slots_mutex);
        slots[slot_].used.store(false);
    }
}

}  // namespace npipe::cli
