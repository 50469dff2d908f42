// npipe::asio::deadline_list: one timer for many entries under the same timeout.
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "npipe/asio/deadline_list.hpp"

namespace {

using npipe::asio::deadline_entry;
using npipe::asio::deadline_list;
using namespace std::chrono_literals;

struct item : deadline_entry {
    explicit item(int i) : id(i) {}
    int id;
};

TEST(DeadlineList, EntriesExpireOldestFirstAndLeaveTheList) {
    asio::io_context io;
    std::vector<int> expired;
    deadline_list list(io.get_executor(), 20ms,
                       [&](deadline_entry& e) { expired.push_back(static_cast<item&>(e).id); });
    std::vector<std::unique_ptr<item>> items;
    for (int i = 0; i < 100; ++i) {
        items.push_back(std::make_unique<item>(i));
        list.watch(*items.back());
    }
    EXPECT_EQ(list.size(), 100u);
    io.run();  // returns once nothing is left to wait for
    ASSERT_EQ(expired.size(), 100u);
    for (int i = 0; i < 100; ++i)
        EXPECT_EQ(expired[i], i);
    EXPECT_EQ(list.size(), 0u);
    for (auto& it : items)
        EXPECT_FALSE(it->watched());
}

TEST(DeadlineList, WatchingAgainRestartsTheTimeout) {
    asio::io_context io;
    std::vector<int> expired;
    deadline_list list(io.get_executor(), 50ms,
                       [&](deadline_entry& e) { expired.push_back(static_cast<item&>(e).id); });
    item a(1), b(2);
    list.watch(a);
    list.watch(b);
    auto first = a.deadline();
    // `a` makes progress before its deadline: it moves behind `b`.
    asio::steady_timer progress(io, 10ms);
    progress.async_wait([&](std::error_code) { list.watch(a); });
    io.run();
    EXPECT_EQ(expired, (std::vector<int>{2, 1}));
    EXPECT_GT(a.deadline(), first);
}

TEST(DeadlineList, UnwatchedAndDestroyedEntriesNeverExpire) {
    asio::io_context io;
    int expired = 0;
    deadline_list list(io.get_executor(), 10ms, [&](deadline_entry&) { ++expired; });
    item kept(1);
    list.watch(kept);
    deadline_list::unwatch(kept);
    EXPECT_FALSE(kept.watched());
    {
        item gone(2);
        list.watch(gone);
    }  // leaves the list as it is destroyed
    EXPECT_EQ(list.size(), 0u);
    io.run();
    EXPECT_EQ(expired, 0);
}

TEST(DeadlineList, AnEntryMovesBetweenLists) {
    asio::io_context io;
    std::vector<int> from_reading, from_writing;
    deadline_list reading(io.get_executor(), 1h, [&](deadline_entry& e) {
        from_reading.push_back(static_cast<item&>(e).id);
    });
    deadline_list writing(io.get_executor(), 10ms, [&](deadline_entry& e) {
        from_writing.push_back(static_cast<item&>(e).id);
    });
    item a(7);
    reading.watch(a);
    writing.watch(a);  // out of `reading`
    EXPECT_EQ(reading.size(), 0u);
    EXPECT_EQ(writing.size(), 1u);
    // Not io.run(): `reading`'s timer stays armed (for an hour) after its entry left; a timer
    // that outlives its head is cheaper than a cancel on every move.
    while (from_writing.empty() && io.run_one() > 0) {
    }
    EXPECT_TRUE(from_reading.empty());
    EXPECT_EQ(from_writing, std::vector<int>{7});
}

TEST(DeadlineList, NoTimeoutMeansNoList) {
    asio::io_context io;
    deadline_list list(io.get_executor(), 0ms, [](deadline_entry&) { FAIL(); });
    item a(1);
    list.watch(a);
    EXPECT_FALSE(a.watched());
    io.run();
}

TEST(DeadlineList, TheHandlerMayWatchTheExpiredEntryAgain) {
    asio::io_context io;
    item a(1);
    int rounds = 0;
    deadline_list list(io.get_executor(), 5ms, [&](deadline_entry& e) {
        if (++rounds < 3)
            list.watch(e);
    });
    list.watch(a);
    io.run();
    EXPECT_EQ(rounds, 3);
    EXPECT_FALSE(a.watched());
}

TEST(DeadlineList, EntriesMayOutliveTheList) {
    asio::io_context io;
    item a(1);
    {
        deadline_list list(io.get_executor(), 1h, [](deadline_entry&) {});
        list.watch(a);
    }
    EXPECT_FALSE(a.watched());
    io.run();  // the cancelled timer's handler touches nothing
}

}  // namespace
