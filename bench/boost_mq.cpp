// Boost.Interprocess message_queue: a bounded queue of fixed-size slots in shared memory, guarded
// by a process-shared mutex and condition variables, used the way its users do: one queue per
// direction, send() / receive() copying each message into and out of a slot.
//
// Both queues are created in the one process before the fork and their names are removed at
// once: the two processes share the mapping they inherit, and nothing is left in /dev/shm
// however the run ends (a killed run included).
#include <unistd.h>

#include <algorithm>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/harness.hpp"

namespace npipe::bench {
namespace {

namespace bip = boost::interprocess;

/// Slots per queue: enough to keep the writer ahead of the reader, at most 8 MiB per queue (a
/// queue is fresh memory: every slot's first use pays page faults, so fewer large slots that are
/// reused sooner measure the queue rather than the faults).
std::size_t queue_slots(std::size_t size) {
    return std::clamp<std::size_t>((std::size_t{8} << 20) / size, 4, 256);
}

class mq_connection : public connection {
  public:
    mq_connection(bip::message_queue& out, bip::message_queue& in) : out_(out), in_(in) {}
    void write_all(std::span<const std::byte> data) override {
        out_.send(data.data(), data.size(), 0);
    }
    std::size_t read_some(std::span<std::byte> buffer) override {
        // receive() needs a buffer of the queue's slot size; the harness's one-byte
        // acknowledgement buffers are smaller, so those go through a scratch buffer.
        bip::message_queue::size_type got = 0;
        unsigned priority = 0;
        if (buffer.size() >= in_.get_max_msg_size()) {
            in_.receive(buffer.data(), buffer.size(), got, priority);
            return got;
        }
        scratch_.resize(in_.get_max_msg_size());
        in_.receive(scratch_.data(), scratch_.size(), got, priority);
        if (got > buffer.size())
            throw bench_error("message_queue: message larger than the buffer");
        std::copy_n(scratch_.begin(), got, buffer.begin());
        return got;
    }

  private:
    bip::message_queue& out_;
    bip::message_queue& in_;
    std::vector<std::byte> scratch_;
};

class mq_listener : public listener {
  public:
    mq_listener(bip::message_queue& to_client, bip::message_queue& to_server)
        : to_client_(to_client), to_server_(to_server) {}
    std::string endpoint() const override { return "inherited"; }
    std::unique_ptr<connection> accept(int) override {
        return std::make_unique<mq_connection>(to_client_, to_server_);
    }

  private:
    bip::message_queue& to_client_;
    bip::message_queue& to_server_;
};

class mq_transport : public transport {
  public:
    bool message_oriented() const override { return true; }
    void check(const config& cfg) const override {
        if (cfg.test == test_kind::connect)
            throw bench_error("message_queue has no connections (no connect test)");
        if (cfg.clients != 1)
            throw bench_error("message_queue: one client only (one queue per direction)");
    }
    void before_fork(const config& cfg) override {
        const std::string base = "npipe-bench-mq-" + std::to_string(::getpid()) + "-";
        const auto slots = queue_slots(cfg.size);
        try {
            to_server_ = std::make_unique<bip::message_queue>(
                bip::create_only, (base + "s").c_str(), slots, cfg.size);
            bip::message_queue::remove((base + "s").c_str());
            to_client_ = std::make_unique<bip::message_queue>(
                bip::create_only, (base + "c").c_str(), slots, cfg.size);
            bip::message_queue::remove((base + "c").c_str());
        } catch (const bip::interprocess_exception& e) {
            bip::message_queue::remove((base + "s").c_str());
            bip::message_queue::remove((base + "c").c_str());
            throw bench_error(std::string("message_queue: ") + e.what());
        }
    }
    std::unique_ptr<listener> listen(const config&) override {
        return std::make_unique<mq_listener>(*to_client_, *to_server_);
    }
    std::unique_ptr<connection> connect(const std::string&, const config&) override {
        return std::make_unique<mq_connection>(*to_server_, *to_client_);
    }

  private:
    std::unique_ptr<bip::message_queue> to_server_, to_client_;
};

}  // namespace
}  // namespace npipe::bench

int main(int argc, char** argv) {
    npipe::bench::mq_transport t;
    return npipe::bench::run_main(argc, argv, "boost-mq", t);
}
