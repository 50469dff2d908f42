// npipe::asio connect and accept: waiting for the server, timeouts, errors, the never-hijack
// listen logic, max_instances queueing.
#include "asio/asio_test_support.hpp"

using namespace npipe_asio_test;

namespace {

// ---------------------------------------------------------------------------------------------
// Connect: waiting for the server, timeouts, errors.

TEST(AsioConnect, WaitsForTheServerWithoutSpinning) {
    ::asio::io_context io;
    auto name = unique_pipe_name("wait");
    na::named_pipe_client client(io, name);
    std::optional<na::named_pipe_acceptor> acceptor;
    std::chrono::steady_clock::time_point created, connected;
    client.async_connect([&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        connected = std::chrono::steady_clock::now();
    });
    // The server appears 400 ms later; meanwhile the client must not burn a CPU.
    ::asio::steady_timer later(io, 400ms);
    double cpu_before = process_cpu_seconds();
    later.async_wait([&](std::error_code) {
        created = std::chrono::steady_clock::now();
        acceptor.emplace(io, name);
        acceptor->async_accept([](std::error_code ec, na::pipe_stream) { EXPECT_FALSE(ec); });
    });
    run(io);
    double cpu = process_cpu_seconds() - cpu_before;
    EXPECT_TRUE(client.is_open());
    EXPECT_LT(cpu, 0.15) << "connect spun while waiting for the server";
    // The directory watch notices the socket at once, not after a whole backoff.
    EXPECT_LT(connected - created, 60ms);
}

TEST(AsioConnect, TimesOutWithTimedOut) {
    ::asio::io_context io;
    na::named_pipe_client client(io, unique_pipe_name("none"));
    std::error_code result;
    auto start = std::chrono::steady_clock::now();
    client.async_connect(150ms, [&](std::error_code ec) { result = ec; });
    run(io);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(result, errc::timed_out);
    EXPECT_EQ(result, std::errc::timed_out);
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 1s);
    EXPECT_FALSE(client.is_open());
}

TEST(AsioConnect, ErrorsThatAreNotRetried) {
    ::asio::io_context io;
    npipe::test::temp_dir dir;
    std::string file = dir.path() + "/file";
    std::ofstream(file) << "x";
    na::named_pipe_client client(io, file + "/below-a-file");  // ENOTDIR: no server can appear
    std::error_code result;
    client.async_connect(5s, [&](std::error_code ec) { result = ec; });
    run(io);
    EXPECT_EQ(result, std::errc::not_a_directory);  // at once, not after the timeout

    EXPECT_THROW(na::named_pipe_client(io, ""), npipe::pipe_error);
    EXPECT_THROW(na::named_pipe_client(io, std::string(200, 'n')), npipe::pipe_error);

    // Connecting twice: already_connected.
    auto name = unique_pipe_name("twice");
    na::named_pipe_acceptor acceptor(io, name);
    na::named_pipe_client twice(io, name);
    std::error_code second;
    twice.async_connect([&](std::error_code ec) {
        ASSERT_FALSE(ec);
        twice.async_connect([&](std::error_code ec) { second = ec; });
    });
    run(io);
    EXPECT_EQ(second, errc::already_connected);
}

// ---------------------------------------------------------------------------------------------
// Accept: the never-hijack listen logic, timeouts, max_instances.

TEST(AsioAcceptor, NeverTakesALiveServersName) {
    ::asio::io_context io;
    auto name = unique_pipe_name("hijack");
    npipe::named_pipe_server sync_server(name);
    try {
        na::named_pipe_acceptor acceptor(io, name);
        ADD_FAILURE() << "took a live server's name";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::name_in_use);
        EXPECT_EQ(e.pipe_name(), name);
    }
    na::named_pipe_acceptor mine(io, unique_pipe_name("mine"));
    EXPECT_THROW(npipe::named_pipe_server(mine.pipe_name()), npipe::pipe_error);
    EXPECT_THROW(na::named_pipe_acceptor(io, mine.pipe_name()), npipe::pipe_error);

    // A file that is not a socket is never deleted.
    npipe::test::temp_dir dir;
    std::string path = dir.path() + "/file";
    std::ofstream(path) << "keep";
    try {
        na::named_pipe_acceptor acceptor(io, path);
        ADD_FAILURE() << "listened over a regular file";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), errc::not_a_socket);
    }
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_THROW(na::named_pipe_acceptor(io, unique_pipe_name(), npipe::pipe_direction::in_out, 0),
                 npipe::pipe_error);

    // Closing removes the socket file, and the name can be served again.
    std::string socket = mine.socket_path();
    EXPECT_EQ(::stat(socket.c_str(), &st), 0);
    mine.close();
    EXPECT_NE(::stat(socket.c_str(), &st), 0);
}

TEST(AsioAcceptor, AccessOptionsAsForTheSyncServer) {
    ::asio::io_context io;
    auto name = unique_pipe_name("acl");
    npipe::pipe_options options;
    options.socket_mode = 0640;
    int asked = 0;
    options.accept_peer = [&](const npipe::peer_credentials& c) {
        EXPECT_EQ(c.pid, ::getpid());
        return ++asked > 1;  // the first client is refused
    };
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out,
                                     npipe::max_allowed_server_instances,
                                     npipe::transmission_mode::byte, options);
    struct stat st {};
    ASSERT_EQ(::stat(acceptor.socket_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    npipe::named_pipe_client refused(name), admitted(name);
    refused.connect(5s);
    admitted.connect(5s);
    std::string got;
    acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
        ASSERT_FALSE(ec) << ec.message();
        auto pipe = std::make_shared<na::pipe_stream>(std::move(p));
        auto buffer = std::make_shared<std::array<char, 2>>();
        ::asio::async_read(*pipe, ::asio::buffer(*buffer), [&, pipe, buffer](auto ec, auto n) {
            EXPECT_FALSE(ec);
            got.assign(buffer->data(), n);
        });
    });
    admitted.write("ok");
    run(io);
    EXPECT_EQ(got, "ok");
    EXPECT_EQ(asked, 2);
    // The refused client was closed before a byte moved: it reads end of stream.
    std::array<std::byte, 4> buffer;
    EXPECT_EQ(refused.read(buffer), 0u);
}

TEST(AsioAcceptor, AcceptTimesOutAndStaysUsable) {
    ::asio::io_context io;
    auto name = unique_pipe_name("acc-to");
    na::named_pipe_acceptor acceptor(io, name);
    std::error_code first;
    bool second = false;
    acceptor.async_accept(100ms, [&](std::error_code ec, na::pipe_stream p) {
        first = ec;
        EXPECT_FALSE(p.is_open());
        acceptor.async_wait_for_connection(5s, [&](std::error_code ec, na::pipe_stream p) {
            EXPECT_FALSE(ec) << ec.message();
            second = p.is_open();
        });
        auto client = std::make_shared<na::named_pipe_client>(io, name);
        client->async_connect([client](std::error_code ec) { EXPECT_FALSE(ec); });
    });
    run(io);
    EXPECT_EQ(first, errc::timed_out);
    EXPECT_TRUE(second);
}

TEST(AsioAcceptor, MaxInstancesQueuesClientsUntilAPipeCloses) {
    ::asio::io_context io;
    auto name = unique_pipe_name("max");
    na::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out, 2);
    EXPECT_EQ(acceptor.max_instances(), 2);
    std::vector<na::pipe_stream> accepted;
    std::function<void()> accept_next = [&] {
        acceptor.async_accept([&](std::error_code ec, na::pipe_stream p) {
            if (ec)
                return;
            accepted.push_back(std::move(p));
            accept_next();
        });
    };
    accept_next();
    // Three clients connect: their connects all succeed (the third waits in the backlog, as
    // with .NET on Linux) and each sends its number.
    std::vector<std::unique_ptr<na::named_pipe_client>> clients;
    int connected = 0;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(std::make_unique<na::named_pipe_client>(io, name));
        auto* c = clients.back().get();
        c->async_connect([&, c, i](std::error_code ec) {
            ASSERT_FALSE(ec);
            ++connected;
            auto digit = std::make_shared<char>(char('0' + i));
            ::asio::async_write(*c, ::asio::buffer(digit.get(), 1),
                                [digit](std::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
        });
    }
    io.restart();
    while (connected < 3 || accepted.size() < 2)
        ASSERT_NE(io.run_one_for(5s), 0u) << "stuck with " << accepted.size() << " accepted";
    // Everything ready runs; the third client must stay queued, not be accepted nor dropped.
    io.run_for(200ms);
    EXPECT_EQ(accepted.size(), 2u);
    // Closing one accepted pipe lets the queued client in.
    accepted.front().close();
    io.restart();
    while (accepted.size() < 3)
        ASSERT_NE(io.run_one_for(5s), 0u);
    std::vector<char> digit(1);
    std::string seen;
    for (std::size_t i = 1; i < 3; ++i) {
        ::asio::async_read(accepted[i], ::asio::buffer(digit),
                           [&](std::error_code ec, std::size_t) {
                               ASSERT_FALSE(ec);
                               seen += digit[0];
                           });
        io.restart();
        while (seen.size() < i)
            ASSERT_NE(io.run_one_for(5s), 0u);
    }
    EXPECT_EQ(seen.size(), 2u);
    acceptor.close();
    accepted.clear();
    clients.clear();
    run(io);
}

}  // namespace
