// A chat server on a message-mode pipe: each message a client sends is relayed, whole, to every
// connected client (the sender included). Clients: `npipe chat client NAME`, or any npipe
// message-pipe client. Stops on Ctrl-C. Usage: example_asio_chat_server [NAME]
//
// Each client has a queue of outgoing messages and one writer coroutine, so a slow client never
// holds up the others, and writes to one pipe never overlap (one write at a time per pipe).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <deque>
#include <iostream>
#include <memory>
#include <set>
#include <string>

#include "npipe/asio/named_pipe_acceptor.hpp"

class member;
using room = std::set<std::shared_ptr<member>>;

class member : public std::enable_shared_from_this<member> {
  public:
    member(npipe::asio::pipe_stream pipe, room& r)
        : pipe_(std::move(pipe)), room_(r), wakeup_(pipe_.get_executor()) {
        wakeup_.expires_at(asio::steady_timer::time_point::max());
    }

    void start() {
        room_.insert(shared_from_this());
        asio::co_spawn(
            pipe_.get_executor(), [self = shared_from_this()] { return self->reader(); },
            asio::detached);
        asio::co_spawn(
            pipe_.get_executor(), [self = shared_from_this()] { return self->writer(); },
            asio::detached);
    }

    void deliver(std::shared_ptr<const std::string> message) {
        outbox_.push_back(std::move(message));
        wakeup_.cancel_one();
    }

  private:
    asio::awaitable<void> reader() {
        try {
            for (;;) {
                auto message = std::make_shared<std::string>();
                co_await pipe_.async_read_message(asio::dynamic_buffer(*message),
                                                  asio::use_awaitable);
                for (auto& m : room_)
                    m->deliver(message);
            }
        } catch (const std::system_error&) {
            leave();  // end of stream, or the client broke the pipe
        }
    }

    asio::awaitable<void> writer() {
        try {
            while (pipe_.is_open()) {
                if (outbox_.empty()) {
                    std::error_code ec;
                    co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                    continue;
                }
                auto message = outbox_.front();
                outbox_.pop_front();
                co_await pipe_.async_write_message(asio::buffer(*message), asio::use_awaitable);
            }
        } catch (const std::system_error&) {
            leave();
        }
    }

    void leave() {
        pipe_.close();
        wakeup_.cancel();
        room_.erase(shared_from_this());
    }

    npipe::asio::pipe_stream pipe_;
    room& room_;
    asio::steady_timer wakeup_;
    std::deque<std::shared_ptr<const std::string>> outbox_;
};

asio::awaitable<void> accept_members(npipe::asio::named_pipe_acceptor& acceptor, room& r) {
    for (;;) {
        auto pipe = co_await acceptor.async_accept(asio::use_awaitable);
        std::make_shared<member>(std::move(pipe), r)->start();
    }
}

int main(int argc, char** argv) {
    std::string name = argc > 1 ? argv[1] : "chat";
    asio::io_context io;
    npipe::asio::named_pipe_acceptor acceptor(io, name, npipe::pipe_direction::in_out,
                                              npipe::max_allowed_server_instances,
                                              npipe::transmission_mode::message);
    room r;
    asio::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&](std::error_code, int) { io.stop(); });
    asio::co_spawn(io, accept_members(acceptor, r), asio::detached);
    std::cout << "chat server on " << acceptor.socket_path() << std::endl;
    io.run();
}
