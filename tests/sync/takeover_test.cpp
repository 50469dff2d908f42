// The synchronous server notices that its name was taken over (a .NET server created without
// FirstPipeInstance unlinks a live server's socket file and binds its own, dotnet/runtime
// #131203), with one watch per name that all its waiting instances share.
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "npipe/errors.hpp"
#include "npipe/named_pipe_client.hpp"
#include "npipe/named_pipe_server.hpp"
#include "support/takeover.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using npipe::errc;
using npipe::test::entries_in;
using npipe::test::foreign_server;
using npipe::test::unique_pipe_name;

// Whether thread `tid` of this process is blocked in poll (a waiting wait_for_connection).
bool in_poll(pid_t tid) {
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
    long number = -1;
    in >> number;
    return number == SYS_poll || number == SYS_ppoll;
}

// Instances waiting in threads of their own; each records how its wait ended.
struct waiting_instances {
    explicit waiting_instances(std::vector<npipe::named_pipe_server>& servers)
        : results(servers.size()), tids(servers.size()) {
        for (std::size_t i = 0; i < servers.size(); ++i)
            threads.emplace_back([this, &servers, i] {
                tids[i] = static_cast<pid_t>(::syscall(SYS_gettid));
                std::error_code ec;
                servers[i].wait_for_connection(30s, ec);
                results[i] = ec;
                ++done;
            });
    }
    ~waiting_instances() {
        for (auto& t : threads)
            t.join();
    }
    // Blocks until every thread is asleep in its wait; false after `limit`.
    bool all_waiting(std::chrono::milliseconds limit = 10s) {
        for (auto until = std::chrono::steady_clock::now() + limit;
             std::chrono::steady_clock::now() < until;) {
            bool all = true;
            for (auto& tid : tids)
                all = all && tid.load() != 0 && in_poll(tid.load());
            if (all)
                return true;
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }
    bool all_done(std::chrono::milliseconds limit = 20s) {
        for (auto until = std::chrono::steady_clock::now() + limit;
             std::chrono::steady_clock::now() < until && done < results.size();)
            std::this_thread::sleep_for(5ms);
        return done == results.size();
    }

    std::vector<std::optional<std::error_code>> results;
    std::vector<std::atomic<pid_t>> tids;
    std::atomic<std::size_t> done{0};
    std::vector<std::thread> threads;
};

// Instances wait in threads of their own; another server takes the name over (by unlink and
// bind, or by a rename over the socket file) once they all sleep; every wait must end so.
void takeover_ends_every_wait(int instances, bool rename_over) {
    auto name = unique_pipe_name(rename_over ? "sync-renamed" : "sync-hijack");
    std::vector<npipe::named_pipe_server> servers;
    for (int i = 0; i < instances; ++i)
        servers.emplace_back(name, npipe::pipe_direction::in_out, instances);
    auto path = servers[0].socket_path();
    auto before = entries_in("/proc/self/fd");
    std::optional<foreign_server> theirs;
    {
        waiting_instances waits(servers);
        ASSERT_TRUE(waits.all_waiting());
        // One watch for the name, made with its listener: a wait opens no descriptor (each
        // waiting instance had an inotify and an epoll of its own before).
        EXPECT_EQ(entries_in("/proc/self/fd"), before);
        theirs.emplace(path, rename_over);
        ASSERT_TRUE(waits.all_done()) << "a wait went on for a socket nobody can reach";
        for (auto& r : waits.results)
            EXPECT_EQ(*r, errc::name_taken_over) << r->message();
    }
    servers.clear();
    EXPECT_TRUE(theirs->still_there()) << "the server removed the file that replaced its own";
}

TEST(SyncTakeover, WaitingInstancesShareOneWatchAndAllSeeTheTakeover) {
    takeover_ends_every_wait(4, false);
}

// Replaced without being unlinked first: no removal event names our file.
TEST(SyncTakeover, AFileRenamedOverTheSocketIsATakeoverToo) {
    takeover_ends_every_wait(1, true);
}

TEST(SyncTakeover, OtherFilesComingAndGoingAreNoTakeover) {
    auto name = unique_pipe_name("sync-busy-dir");
    std::vector<npipe::named_pipe_server> servers;
    servers.emplace_back(name, npipe::pipe_direction::in_out, 2);
    servers.emplace_back(name, npipe::pipe_direction::in_out, 2);
    auto dir = std::filesystem::path(servers[0].socket_path()).parent_path();
    waiting_instances waits(servers);
    ASSERT_TRUE(waits.all_waiting());
    for (int i = 0; i < 50; ++i) {
        auto other = dir / (name + "-other-" + std::to_string(i));
        { std::ofstream(other) << "x"; }
        std::filesystem::rename(other, other.string() + ".moved");
        std::filesystem::remove(other.string() + ".moved");
    }
    // Both waits are still on: two clients are accepted.
    npipe::named_pipe_client a(name), b(name);
    a.connect(5s);
    b.connect(5s);
    ASSERT_TRUE(waits.all_done());
    for (auto& r : waits.results)
        EXPECT_FALSE(*r) << r->message();
}

}  // namespace
