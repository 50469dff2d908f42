// nng (nanomsg-next-gen) over ipc://, as its users write it: a pair0 socket for the data tests,
// req0/rep0 for the connect test (a new req0 socket, dial, one byte each way, close). nng_send
// and nng_recv copy to and from our buffers.
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/harness.hpp"

namespace npipe::bench {
namespace {

void check_nng(int rv, const std::string& what) {
    if (rv != 0)
        throw bench_error(what + ": " + nng_strerror(rv));
}

std::string temp_dir() {
    const char* t = std::getenv("TMPDIR");
    std::string dir = t && *t ? t : "/tmp";
    return dir.back() == '/' ? dir : dir + '/';
}

class nng_connection : public connection {
  public:
    nng_connection(nng_socket s, bool owned) : s_(s), owned_(owned) {}
    ~nng_connection() override {
        if (owned_)
            nng_close(s_);
    }
    void write_all(std::span<const std::byte> data) override {
        check_nng(nng_send(s_, const_cast<std::byte*>(data.data()), data.size(), 0), "nng_send");
    }
    std::size_t read_some(std::span<std::byte> buffer) override {
        std::size_t n = buffer.size();
        check_nng(nng_recv(s_, buffer.data(), &n, 0), "nng_recv");
        return n;
    }

  private:
    nng_socket s_;
    bool owned_;
};

nng_socket open_socket(int (*open)(nng_socket*), bool queue) {
    nng_socket s;
    check_nng(open(&s), "nng socket open");
    // nng drops messages above 1 MiB by default; the throughput sweep sends 1 MiB writes.
    check_nng(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0), "nng_setopt(RECVMAXSZ)");
    if (queue) {
        // pair0 queues no message by default, so every send waits for nng's pipe thread to take
        // the previous one. Queues of 1000 messages, ZeroMQ's default high-water mark, keep
        // the comparison with ZeroMQ fair.
        check_nng(nng_socket_set_int(s, NNG_OPT_SENDBUF, 1000), "nng_setopt(SENDBUF)");
        check_nng(nng_socket_set_int(s, NNG_OPT_RECVBUF, 1000), "nng_setopt(RECVBUF)");
    }
    return s;
}

class nng_transport : public transport {
  public:
    bool message_oriented() const override { return true; }
    void check(const config& cfg) const override {
        if (cfg.clients != 1)
            throw bench_error("the pair0 socket takes one peer (--clients 1)");
        if (cfg.buffer_size)
            throw bench_error("no kernel buffer size option (--buffer-size)");
    }

    std::unique_ptr<listener> listen(const config& cfg) override {
        struct nng_listener_impl : listener {
            nng_socket s{};
            std::string path, url;
            ~nng_listener_impl() override {
                nng_close(s);
                ::unlink(path.c_str());
            }
            std::string endpoint() const override { return url; }
            std::unique_ptr<connection> accept(int) override {
                return std::make_unique<nng_connection>(s, false);
            }
        };
        auto l = std::make_unique<nng_listener_impl>();
        l->path = temp_dir() + "npipe-bench-nng-" + std::to_string(::getpid());
        l->url = "ipc://" + l->path;
        l->s = open_socket(cfg.test == test_kind::connect ? nng_rep0_open : nng_pair0_open,
                           cfg.test != test_kind::connect);
        check_nng(nng_listen(l->s, l->url.c_str(), nullptr, 0), "nng_listen " + l->url);
        return l;
    }

    std::unique_ptr<connection> connect(const std::string& url, const config& cfg) override {
        auto s = open_socket(cfg.test == test_kind::connect ? nng_req0_open : nng_pair0_open,
                             cfg.test != test_kind::connect);
        auto c = std::make_unique<nng_connection>(s, true);
        // Without NNG_FLAG_NONBLOCK the dial completes (or fails) before it returns.
        check_nng(nng_dial(s, url.c_str(), nullptr, 0), "nng_dial " + url);
        return c;
    }
};

}  // namespace
}  // namespace npipe::bench

int main(int argc, char** argv) {
    npipe::bench::nng_transport t;
    int rc = npipe::bench::run_main(argc, argv, "nng", t);
    nng_fini();
    return rc;
}
