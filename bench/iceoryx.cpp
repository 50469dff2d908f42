// Eclipse iceoryx 2 (Debian's iceoryx packages): zero-copy publish/subscribe through shared memory
// managed by its RouDi daemon, which bench/run.sh starts (with bench/iceoryx_roudi.toml) before
// the run and stops after it. One topic per direction: the client publishes on "c2s" and
// subscribes to "s2c", the server the other way round. A write loans a chunk, copies the data
// in and publishes it; a read takes a chunk, copies it out and releases it, as an application
// with its own buffers would (iceoryx's zero-copy use writes into the loaned chunk directly,
// which saves the copies but not the wake-ups that dominate small messages).
//
// The queues block rather than drop (WAIT_FOR_CONSUMER / BLOCK_PRODUCER): every message of a
// throughput round must arrive. A reader with nothing to take sleeps in a WaitSet (a semaphore
// in shared memory); with --spin it polls take() instead, yielding the CPU every 256 polls, as
// npipe's spin_before_block mode does on shared memory.
//
//   bench_iceoryx [--spin] TEST [harness options]
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iceoryx_hoofs/log/logmanager.hpp>
#include <iceoryx_hoofs/platform/platform_settings.hpp>
#include <iceoryx_posh/mepoo/chunk_header.hpp>
#include <iceoryx_posh/popo/untyped_publisher.hpp>
#include <iceoryx_posh/popo/untyped_subscriber.hpp>
#include <iceoryx_posh/popo/wait_set.hpp>
#include <iceoryx_posh/runtime/posh_runtime.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/harness.hpp"

namespace npipe::bench {
namespace {

using namespace std::chrono_literals;

iox::capro::IdString_t id_string(const std::string& s) {
    return {iox::cxx::TruncateToCapacity, s.c_str(), s.size()};
}

iox::capro::ServiceDescription topic(const std::string& endpoint, const std::string& direction) {
    return {id_string("npipe-bench"), id_string(endpoint), id_string(direction)};
}

/// Chunks a subscriber may have queued: bounded so that large chunks fit the memory pools of
/// bench/iceoryx_roudi.toml (the publisher waits when the queue is full).
std::uint64_t queue_capacity(std::size_t size) {
    return size > 128 * 1024 ? 16 : iox::MAX_SUBSCRIBER_QUEUE_CAPACITY;
}

/// A spin-wait hint to the CPU (and to a hypervisor watching for spinning vCPUs).
inline void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

class iox_connection : public connection {
  public:
    iox_connection(const std::string& endpoint, const char* out, const char* in, const config& cfg,
                   bool spin)
        : pub_(topic(endpoint, out), publisher_options()),
          sub_(topic(endpoint, in), subscriber_options(cfg)),
          spin_(spin) {
        if (!spin_)
            waitset_.attachState(sub_, iox::popo::SubscriberState::HAS_DATA).or_else([](auto) {
                throw bench_error("iceoryx: cannot attach the subscriber to a WaitSet");
            });
        // Discovery goes through RouDi: wait until both topics are connected, else the first
        // messages would be published to nobody.
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (!pub_.hasSubscribers() ||
               sub_.getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
            if (std::chrono::steady_clock::now() > deadline)
                throw bench_error(
                    "iceoryx: the peer's topics did not connect within 20 s "
                    "(is iox-roudi running?)");
            std::this_thread::sleep_for(1ms);
        }
    }
    ~iox_connection() override {
        if (!spin_)
            waitset_.detachState(sub_, iox::popo::SubscriberState::HAS_DATA);
    }

    void write_all(std::span<const std::byte> data) override {
        auto loaned = pub_.loan(static_cast<std::uint32_t>(data.size()));
        if (loaned.has_error())
            throw bench_error("iceoryx: loan of " + std::to_string(data.size()) +
                              " bytes failed (error " +
                              std::to_string(static_cast<int>(loaned.get_error())) + ")");
        std::memcpy(loaned.value(), data.data(), data.size());
        pub_.publish(loaned.value());
    }

    std::size_t read_some(std::span<std::byte> buffer) override {
        for (;;) {
            auto taken = sub_.take();
            if (!taken.has_error()) {
                const void* payload = taken.value();
                const auto size =
                    iox::mepoo::ChunkHeader::fromUserPayload(payload)->userPayloadSize();
                if (size > buffer.size()) {
                    sub_.release(payload);
                    throw bench_error("iceoryx: a chunk larger than the buffer");
                }
                std::memcpy(buffer.data(), payload, size);
                sub_.release(payload);
                return size;
            }
            if (taken.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE)
                throw bench_error("iceoryx: take failed (error " +
                                  std::to_string(static_cast<int>(taken.get_error())) + ")");
            if (!spin_)
                waitset_.wait();
            else if (++spins_ % 256 == 0)
                ::sched_yield();
            else
                pause();
        }
    }

  private:
    static iox::popo::PublisherOptions publisher_options() {
        iox::popo::PublisherOptions o;
        o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
        return o;
    }
    static iox::popo::SubscriberOptions subscriber_options(const config& cfg) {
        iox::popo::SubscriberOptions o;
        o.queueCapacity = queue_capacity(cfg.size);
        o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
        return o;
    }

    iox::popo::UntypedPublisher pub_;
    iox::popo::UntypedSubscriber sub_;
    iox::popo::WaitSet<> waitset_;
    bool spin_;
    unsigned spins_ = 0;
};

class iox_listener : public listener {
  public:
    iox_listener(const config& cfg, bool spin, std::string runtime)
        : cfg_(cfg), spin_(spin), runtime_(std::move(runtime)) {}
    ~iox_listener() override {
        // The harness ends the server process with _Exit, which skips the runtime's static
        // destructor: remove the socket and lock file the runtime made in iceoryx's fixed /tmp/
        // (RouDi frees the process's ports when it stops answering).
        ::unlink((iox::platform::IOX_UDS_SOCKET_PATH_PREFIX + runtime_).c_str());
        ::unlink((iox::platform::IOX_LOCK_FILE_PATH_PREFIX + runtime_ + ".lock").c_str());
    }
    std::string endpoint() const override { return endpoint_; }
    std::unique_ptr<connection> accept(int) override {
        return std::make_unique<iox_connection>(endpoint_, "s2c", "c2s", cfg_, spin_);
    }

  private:
    config cfg_;
    bool spin_;
    std::string runtime_;
    std::string endpoint_ = std::to_string(::getpid());
};

class iox_transport : public transport {
  public:
    explicit iox_transport(bool spin) : spin_(spin) {}
    bool message_oriented() const override { return true; }
    void check(const config& cfg) const override {
        if (cfg.test == test_kind::connect)
            throw bench_error("iceoryx has no connections (no connect test)");
        if (cfg.clients != 1)
            throw bench_error("iceoryx: one client only (one topic per direction)");
    }
    void in_process(role r, const config&) override {
        // iceoryx logs to stdout/stderr, where bench/run.sh expects the JSON line last.
        iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kError);
        // One runtime per process, registered with RouDi under a name of its own.
        runtime_ = std::string("npipe-bench-") + (r == role::server ? "s-" : "c-") +
                   std::to_string(::getpid());
        iox::runtime::PoshRuntime::initRuntime(
            iox::RuntimeName_t(iox::cxx::TruncateToCapacity, runtime_.c_str(), runtime_.size()));
    }
    std::unique_ptr<listener> listen(const config& cfg) override {
        return std::make_unique<iox_listener>(cfg, spin_, runtime_);
    }
    std::unique_ptr<connection> connect(const std::string& endpoint, const config& cfg) override {
        return std::make_unique<iox_connection>(endpoint, "c2s", "s2c", cfg, spin_);
    }

  private:
    bool spin_;
    std::string runtime_;
};

}  // namespace
}  // namespace npipe::bench

int main(int argc, char** argv) {
    bool spin = argc > 1 && std::strcmp(argv[1], "--spin") == 0;
    if (spin) {
        argv[1] = argv[0];
        ++argv;
        --argc;
    }
    npipe::bench::iox_transport t(spin);
    return npipe::bench::run_main(argc, argv, spin ? "iceoryx-spin" : "iceoryx", t);
}
