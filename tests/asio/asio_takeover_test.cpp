// npipe::asio's acceptor notices that its name was taken over (a .NET server created without
// FirstPipeInstance unlinks a live server's socket file and binds its own, dotnet/runtime
// #131203): a pending accept completes with errc::name_taken_over, woken through the reactor.
#include <filesystem>

#include "asio/asio_test_support.hpp"
#include "support/takeover.hpp"

namespace npipe_asio_test {
namespace {

using npipe::test::entries_in;
using npipe::test::foreign_server;

// Starts an accept, lets another server take the name over (by unlink and bind, or by a
// rename over the socket file) once it is pending, and checks how it ends.
void takeover_ends_the_pending_accept(bool rename_over) {
    ::asio::io_context io;
    auto name = unique_pipe_name(rename_over ? "async-renamed" : "async-hijack");
    auto threads = entries_in("/proc/self/task");
    na::named_pipe_acceptor acceptor(io, name);
    // No thread watches the name: the reactor waits on the watch.
    EXPECT_EQ(entries_in("/proc/self/task"), threads);
    std::optional<std::error_code> result;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        result = ec;
        EXPECT_FALSE(p.is_open());
    });
    // The accept is pending (nothing to do but wait) when the other server arrives.
    io.run_for(50ms);
    ASSERT_FALSE(result);
    std::optional<foreign_server> theirs;
    ::asio::post(io, [&] { theirs.emplace(acceptor.socket_path(), rename_over); });
    run(io);
    ASSERT_TRUE(result) << "the accept went on for a socket nobody can reach";
    EXPECT_EQ(*result, errc::name_taken_over) << result->message();

    // Every later accept says the same at once.
    std::optional<std::error_code> again;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream) { again = ec; });
    run(io);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, errc::name_taken_over);

    // Closing the acceptor leaves the other server's file alone.
    acceptor.close();
    EXPECT_TRUE(theirs->still_there());
}

TEST(AsioTakeover, PendingAcceptFailsWithNameTakenOver) {
    takeover_ends_the_pending_accept(false);
}

// Replaced without being unlinked first: no removal event names our file.
TEST(AsioTakeover, AFileRenamedOverTheSocketIsATakeoverToo) {
    takeover_ends_the_pending_accept(true);
}

TEST(AsioTakeover, OtherFilesComingAndGoingAreNoTakeover) {
    ::asio::io_context io;
    auto name = unique_pipe_name("async-busy-dir");
    na::named_pipe_acceptor acceptor(io, name);
    auto dir = std::filesystem::path(acceptor.socket_path()).parent_path();
    std::optional<std::error_code> result;
    bool accepted = false;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        result = ec;
        accepted = p.is_open();
    });
    io.run_for(50ms);
    // Each of these wakes the pending accept, which finds no client and waits again.
    for (int i = 0; i < 50; ++i) {
        auto other = dir / (name + "-other-" + std::to_string(i));
        { std::ofstream(other) << "x"; }
        std::filesystem::rename(other, other.string() + ".moved");
        std::filesystem::remove(other.string() + ".moved");
        io.run_for(1ms);
    }
    ASSERT_FALSE(result) << result->message();
    na::named_pipe_client client(io, name);
    client.async_connect([](std::error_code ec) { EXPECT_FALSE(ec) << ec.message(); });
    run(io);
    ASSERT_TRUE(result);
    EXPECT_FALSE(*result) << result->message();
    EXPECT_TRUE(accepted);
}

}  // namespace
}  // namespace npipe_asio_test
