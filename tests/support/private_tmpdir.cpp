// Linked into every test program (an object library, so it is never dropped by the linker):
// the process runs with a TMPDIR of its own, removed with everything in it when the process
// exits. Simple pipe names map under $TMPDIR, so a socket left behind by a child the test
// killed, by a server that crashed, or by a test that failed halfway goes with the directory
// instead of staying in /tmp. Children inherit the variable, .NET and Mono peers included.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace {

constexpr std::string_view prefix = "npipe-run-";

// Directories of test processes that no longer exist (killed by a timeout: no exit handler
// ran), so that even those are cleaned up by the next run.
void sweep_orphans(const std::filesystem::path& base) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
        auto file = entry.path().filename().string();
        if (file.rfind(prefix, 0) != 0)
            continue;
        auto dash = file.find('-', prefix.size());
        if (dash == std::string::npos)
            continue;
        pid_t pid = 0;
        try {
            pid = static_cast<pid_t>(std::stol(file.substr(prefix.size(), dash - prefix.size())));
        } catch (const std::exception&) {
            continue;
        }
        struct stat st {};
        if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH &&
            ::lstat(entry.path().c_str(), &st) == 0 && st.st_uid == ::geteuid())
            std::filesystem::remove_all(entry.path(), ec);
    }
}

struct private_tmpdir {
    std::string path;
    pid_t owner = ::getpid();

    private_tmpdir() {
        const char* outer = std::getenv("TMPDIR");
        std::string base = outer && *outer ? outer : "/tmp";
        sweep_orphans(base);
        std::string tmpl = base + "/" + std::string(prefix) + std::to_string(owner) + "-XXXXXX";
        if (!::mkdtemp(tmpl.data()))
            return;  // tests then use the outer TMPDIR, as before
        path = tmpl;
        // Sticky and open to all, like /tmp: tests that act as another user make sockets here.
        ::chmod(path.c_str(), 01777);
        ::setenv("TMPDIR", path.c_str(), 1);
    }
    ~private_tmpdir() {
        // A forked child that exits normally must not take its parent's directory with it.
        if (path.empty() || ::getpid() != owner)
            return;
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

private_tmpdir the_private_tmpdir;

}  // namespace
