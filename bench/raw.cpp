// Baselines that are nothing but system calls: Unix domain sockets (SOCK_STREAM and
// SOCK_SEQPACKET), TCP over loopback (common/socket_transports.cpp), and a pair of pipe2()
// pipes. These are the floor every IPC library sits on; docs/benchmarks.md reports each system
// as a ratio to uds-stream.
//
//   bench_raw uds-stream|uds-seqpacket|tcp|pipe TEST [options]   (see harness.hpp)
#include <fcntl.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "common/fd_io.hpp"
#include "common/harness.hpp"
#include "common/socket_transports.hpp"

namespace npipe::bench {
namespace {

/// Two pipes made before the fork: one per direction. There is nothing to connect, so the
/// listener and the client each take their ends once.
class pipe_transport : public transport {
  public:
    void check(const config& cfg) const override {
        if (cfg.test == test_kind::connect)
            throw bench_error("a pipe pair has no connection to set up (no connect test)");
        if (cfg.clients != 1)
            throw bench_error("one pipe pair serves one client (--clients 1)");
    }
    void before_fork(const config& cfg) override {
        int up[2], down[2];
        if (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(down, O_CLOEXEC) != 0)
            throw_errno("pipe2");
        up_rd_.reset(up[0]);
        up_wr_.reset(up[1]);
        down_rd_.reset(down[0]);
        down_wr_.reset(down[1]);
        if (cfg.buffer_size) {
            for (int fd : {up[0], down[0]})
                if (::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(cfg.buffer_size)) < 0)
                    throw_errno("fcntl(F_SETPIPE_SZ)");
        }
    }
    // Each process drops the other's ends, so a dead peer reads as end of stream.
    void in_process(role r, const config&) override {
        if (r == role::server) {
            up_wr_.reset();
            down_rd_.reset();
        } else {
            up_rd_.reset();
            down_wr_.reset();
        }
    }

    std::unique_ptr<listener> listen(const config&) override {
        struct pipe_listener : listener {
            pipe_transport& t;
            explicit pipe_listener(pipe_transport& p) : t(p) {}
            std::string endpoint() const override { return "pipe2"; }
            std::unique_ptr<connection> accept(int) override {
                return std::make_unique<fd_connection>(std::move(t.up_rd_), std::move(t.down_wr_));
            }
        };
        return std::make_unique<pipe_listener>(*this);
    }

    std::unique_ptr<connection> connect(const std::string&, const config&) override {
        return std::make_unique<fd_connection>(std::move(down_rd_), std::move(up_wr_));
    }

  private:
    unique_fd up_rd_, up_wr_, down_rd_, down_wr_;  // up: client to server
};

}  // namespace
}  // namespace npipe::bench

int main(int argc, char** argv) {
    using namespace npipe::bench;
    std::string system = argc > 1 ? argv[1] : "";
    std::unique_ptr<transport> t;
    if (system == "uds-stream")
        t = make_unix_socket_transport(false);
    else if (system == "uds-seqpacket")
        t = make_unix_socket_transport(true);
    else if (system == "tcp")
        t = make_tcp_transport();
    else if (system == "pipe")
        t = std::make_unique<pipe_transport>();
    if (!t) {
        std::cerr << "usage: " << argv[0]
                  << " uds-stream|uds-seqpacket|tcp|pipe latency|throughput|messages|connect"
                     " [--size BYTES] [--count N] [--clients N] [--buffer-size BYTES]"
                     " [--cpu-server N] [--cpu-client N] [--json]\n";
        return 2;
    }
    return run_main(argc - 1, argv + 1, system, *t);
}
