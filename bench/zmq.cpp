// ZeroMQ over ipc:// (libzmq's Unix-socket transport), used the way its users do: a PAIR socket
// for the data tests (ZeroMQ queues and batches messages on its I/O thread), REQ/REP for the
// connect test (a new REQ socket per connection). zmq_send / zmq_recv copy to and from our
// buffers, as an application with its own buffers would.
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/harness.hpp"

namespace npipe::bench {
namespace {

[[noreturn]] void throw_zmq(const std::string& what) {
    throw bench_error(what + ": " + zmq_strerror(zmq_errno()));
}

std::string temp_dir() {
    const char* t = std::getenv("TMPDIR");
    std::string dir = t && *t ? t : "/tmp";
    return dir.back() == '/' ? dir : dir + '/';
}

/// A ZeroMQ socket, closed on destruction unless borrowed from the listener.
class zmq_connection : public connection {
  public:
    zmq_connection(void* socket, bool owned) : s_(socket), owned_(owned) {}
    ~zmq_connection() override {
        if (owned_)
            zmq_close(s_);
    }
    void write_all(std::span<const std::byte> data) override {
        while (zmq_send(s_, data.data(), data.size(), 0) < 0)
            if (zmq_errno() != EINTR)
                throw_zmq("zmq_send");
    }
    std::size_t read_some(std::span<std::byte> buffer) override {
        int n;
        while ((n = zmq_recv(s_, buffer.data(), buffer.size(), 0)) < 0)
            if (zmq_errno() != EINTR)
                throw_zmq("zmq_recv");
        if (static_cast<std::size_t>(n) > buffer.size())
            throw bench_error("zmq_recv: message larger than the buffer");
        return static_cast<std::size_t>(n);
    }

  private:
    void* s_;
    bool owned_;
};

class zmq_transport : public transport {
  public:
    ~zmq_transport() override {
        if (ctx_)
            zmq_ctx_term(ctx_);
    }
    bool message_oriented() const override { return true; }
    void check(const config& cfg) const override {
        if (cfg.clients != 1)
            throw bench_error("the PAIR socket takes one peer (--clients 1)");
    }
    // A context (and its I/O thread) must be created after the fork, in each process.
    void in_process(role, const config&) override {
        ctx_ = zmq_ctx_new();
        if (!ctx_)
            throw_zmq("zmq_ctx_new");
    }

    std::unique_ptr<listener> listen(const config& cfg) override {
        struct zmq_listener : listener {
            void* s = nullptr;
            std::string path, url;
            ~zmq_listener() override {
                zmq_close(s);
                ::unlink(path.c_str());
            }
            std::string endpoint() const override { return url; }
            std::unique_ptr<connection> accept(int) override {
                // One socket serves every peer: the "connection" is a loan of it.
                return std::make_unique<zmq_connection>(s, false);
            }
        };
        auto l = std::make_unique<zmq_listener>();
        l->path = temp_dir() + "npipe-bench-zmq-" + std::to_string(::getpid());
        l->url = "ipc://" + l->path;
        l->s = make_socket(cfg.test == test_kind::connect ? ZMQ_REP : ZMQ_PAIR, cfg);
        if (zmq_bind(l->s, l->url.c_str()) != 0)
            throw_zmq("zmq_bind " + l->url);
        return l;
    }

    std::unique_ptr<connection> connect(const std::string& url, const config& cfg) override {
        void* s = make_socket(cfg.test == test_kind::connect ? ZMQ_REQ : ZMQ_PAIR, cfg);
        auto c = std::make_unique<zmq_connection>(s, true);
        // zmq_connect returns at once and connects in the background; the first message waits
        // for the connection, a cost every ZeroMQ user pays too.
        if (zmq_connect(s, url.c_str()) != 0)
            throw_zmq("zmq_connect " + url);
        return c;
    }

  private:
    void* make_socket(int type, const config& cfg) {
        void* s = zmq_socket(ctx_, type);
        if (!s)
            throw_zmq("zmq_socket");
        // ZMQ_LINGER stays at its default: with 0, a REQ socket closed right after its reply
        // sometimes lost a later socket's request under this test's connect/close churn.
        if (cfg.buffer_size) {
            int v = static_cast<int>(cfg.buffer_size);
            zmq_setsockopt(s, ZMQ_SNDBUF, &v, sizeof v);
            zmq_setsockopt(s, ZMQ_RCVBUF, &v, sizeof v);
        }
        return s;
    }

    void* ctx_ = nullptr;
};

}  // namespace
}  // namespace npipe::bench

int main(int argc, char** argv) {
    npipe::bench::zmq_transport t;
    return npipe::bench::run_main(argc, argv, "zmq", t);
}
