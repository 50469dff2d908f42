#include "cleanup.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace npipe::cli {
namespace {

// The handler reads these with nothing but async-signal-safe calls: fixed buffers, published
// by an atomic flag written after them.
struct slot {
    char path[4096];
    dev_t dev;
    ino_t ino;
    std::atomic<bool> used{false};
};
slot slots[8];
std::mutex slots_mutex;

extern "C" void remove_and_exit(int sig) {
    for (auto& s : slots) {
        struct stat st {};
        if (s.used.load() && ::lstat(s.path, &st) == 0 && st.st_dev == s.dev && st.st_ino == s.ino)
            ::unlink(s.path);
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
    struct stat st {};
    if (path.size() >= sizeof slots[0].path || ::lstat(path.c_str(), &st) != 0)
        return;
    install_once();
    std::lock_guard lock(slots_mutex);
    for (int i = 0; i < 8; ++i) {
        if (!slots[i].used.load()) {
            std::memcpy(slots[i].path, path.c_str(), path.size() + 1);
            slots[i].dev = st.st_dev;
            slots[i].ino = st.st_ino;
            slots[i].used.store(true);
            slot_ = i;
            return;
        }
    }
}

remove_on_signal::~remove_on_signal() {
    if (slot_ >= 0) {
        std::lock_guard lock(slots_mutex);
        slots[slot_].used.store(false);
    }
}

}  // namespace npipe::cli
