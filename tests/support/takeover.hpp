// What a .NET server created without FirstPipeInstance (or a Mono one) does to a live server
// (dotnet/runtime #131203), done by the test itself: unlink the socket file and bind and listen
// on a new socket at the same path.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

namespace npipe::test {

/// A listening socket bound where another server's file was. With `rename_over`, it is bound
/// beside the path and renamed onto it (the old file is replaced without being unlinked first).
/// The destructor closes it and removes its file (if it is still its own).
class foreign_server {
  public:
    explicit foreign_server(const std::string& path, bool rename_over = false) : path_(path) {
        std::string bind_at = rename_over ? path + ".new" : path;
        if (!rename_over)
            ::unlink(path.c_str());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, bind_at.c_str(), sizeof address.sun_path - 1);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0)
            << bind_at << ": " << std::strerror(errno);
        EXPECT_EQ(::listen(fd_, 16), 0) << std::strerror(errno);
        if (rename_over) {
            EXPECT_EQ(::rename(bind_at.c_str(), path.c_str()), 0) << std::strerror(errno);
        }
        EXPECT_EQ(::lstat(path.c_str(), &file_), 0) << path;
    }
    ~foreign_server() {
        if (fd_ >= 0)
            ::close(fd_);
        struct stat now {};
        if (::lstat(path_.c_str(), &now) == 0 && now.st_ino == file_.st_ino &&
            now.st_dev == file_.st_dev)
            ::unlink(path_.c_str());
    }
    foreign_server(const foreign_server&) = delete;
    foreign_server& operator=(const foreign_server&) = delete;

    /// Whether the file at the path is still this server's (nobody removed it).
    bool still_there() const {
        struct stat now {};
        return ::lstat(path_.c_str(), &now) == 0 && now.st_ino == file_.st_ino &&
               now.st_dev == file_.st_dev;
    }

  private:
    std::string path_;
    int fd_ = -1;
    struct stat file_ {};
};

/// The number of entries in a directory of /proc (/proc/self/fd: open descriptors;
/// /proc/self/task: threads).
inline std::size_t entries_in(const std::string& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir))
        ++n;
    return n;
}

}  // namespace npipe::test
