// run_alternating: two systems in one run, the client switching between a connection of each
// every `block` round trips. It is a transport made of the two (the harness runs it like any
// other), whose client end notes which system carried each round trip, so the harness's timed
// round trips can be split between them afterwards.
#include <cstdint>
#include <sstream>

#include "harness.hpp"
#include "harness_detail.hpp"

namespace npipe::bench {
namespace {

/// Both systems' connections. Both ends switch at the same round trip: the client before the
/// write that starts the first round trip of a block, the server after the write that ends
/// the last one (it reads first).
class alternating_connection : public connection {
  public:
    alternating_connection(std::unique_ptr<connection> first, std::unique_ptr<connection> second,
                           std::size_t block, std::vector<std::uint8_t>* carried_by)
        : ends_{std::move(first), std::move(second)}, block_(block), carried_by_(carried_by) {}

    void write_all(std::span<const std::byte> data) override {
        const bool client = carried_by_ != nullptr;
        if (client) {
            if (writes_ > 0 && writes_ % block_ == 0)
                current_ ^= 1;
            carried_by_->push_back(current_);
        }
        ends_[current_]->write_all(data);
        ++writes_;
        if (!client && writes_ % block_ == 0)
            current_ ^= 1;
    }
    std::size_t read_some(std::span<std::byte> buffer) override {
        return ends_[current_]->read_some(buffer);
    }

  private:
    std::unique_ptr<connection> ends_[2];
    std::size_t block_;
    std::vector<std::uint8_t>* carried_by_;  ///< client: the system of each round trip
    std::size_t writes_ = 0;
    std::uint8_t current_ = 0;
};

class alternating_transport : public transport {
  public:
    alternating_transport(transport& first, transport& second, std::size_t block)
        : first_(first), second_(second), block_(block) {}

    bool message_oriented() const override { return first_.message_oriented(); }
    void check(const config& cfg) const override {
        if (cfg.test != test_kind::latency)
            throw bench_error("alternating two systems measures latency only");
        if (cfg.clients != 1)
            throw bench_error("alternating two systems takes one client (--clients 1)");
        if (first_.message_oriented() != second_.message_oriented())
            throw bench_error("alternating two systems needs two stream or two message transports");
        first_.check(cfg);
        second_.check(cfg);
    }
    void before_fork(const config& cfg) override {
        first_.before_fork(cfg);
        second_.before_fork(cfg);
    }
    void in_process(role r, const config& cfg) override {
        first_.in_process(r, cfg);
        second_.in_process(r, cfg);
    }

    std::unique_ptr<listener> listen(const config& cfg) override {
        struct both : listener {
            std::unique_ptr<listener> first, second;
            std::size_t block;
            std::string endpoint() const override {
                return first->endpoint() + '\n' + second->endpoint();
            }
            std::unique_ptr<connection> accept(int slot) override {
                auto a = first->accept(slot);  // the client connects in the same order
                auto b = second->accept(slot);
                return std::make_unique<alternating_connection>(std::move(a), std::move(b), block,
                                                                nullptr);
            }
            void close() override {
                first->close();
                second->close();
            }
        };
        auto l = std::make_unique<both>();
        l->first = first_.listen(cfg);
        l->second = second_.listen(cfg);
        l->block = block_;
        return l;
    }

    std::unique_ptr<connection> connect(const std::string& endpoint, const config& cfg) override {
        auto split = endpoint.find('\n');
        if (split == std::string::npos)
            throw bench_error("alternating: the server sent one endpoint, not two");
        auto a = first_.connect(endpoint.substr(0, split), cfg);
        auto b = second_.connect(endpoint.substr(split + 1), cfg);
        return std::make_unique<alternating_connection>(std::move(a), std::move(b), block_,
                                                        &carried_by_);
    }

    /// The system (0: first, 1: second) of every round trip the client made, warm-up included.
    const std::vector<std::uint8_t>& carried_by() const { return carried_by_; }

  private:
    transport& first_;
    transport& second_;
    std::size_t block_;
    std::vector<std::uint8_t> carried_by_;
};

}  // namespace

alternating_result run_alternating(transport& first, std::string first_name, transport& second,
                                   std::string second_name, const config& cfg_in,
                                   std::size_t block) {
    if (block == 0)
        throw bench_error("alternating: a block is at least one round trip");
    alternating_transport both(first, second, block);
    config cfg = cfg_in;
    cfg.apply_defaults();  // the figures name the size and count the run used
    const config used = cfg;
    cfg.system = first_name + "+" + second_name;
    result r = run(both, cfg);

    // The timed round trips are the last ones the client made (a warm-up comes first).
    const auto& by = both.carried_by();
    const auto& timed = r.round_trips_us;
    if (by.size() < timed.size())
        throw bench_error("alternating: fewer round trips noted than timed");
    std::vector<double> split[2];
    const std::size_t offset = by.size() - timed.size();
    for (std::size_t i = 0; i < timed.size(); ++i)
        split[by[offset + i]].push_back(timed[i]);

    for (int k = 0; k < 2; ++k)
        if (split[k].empty())
            throw bench_error("alternating every " + std::to_string(block) + " round trips, " +
                              std::to_string(timed.size()) + " timed round trips leave none for " +
                              (k == 0 ? first_name : second_name) +
                              ": use a larger --count or a smaller --block");
    alternating_result out;
    out.block = block;
    result* ends[2] = {&out.first, &out.second};
    std::string names[2] = {std::move(first_name), std::move(second_name)};
    for (int k = 0; k < 2; ++k) {
        auto& e = *ends[k];
        e.cfg = used;
        e.cfg.system = names[k];
        e.cfg.count = split[k].size();
        // CPU time is the pair's: the processes ran both systems.
        e.cpu_client_us = r.cpu_client_us;
        e.cpu_server_us = r.cpu_server_us;
        e.cpu_client_share = r.cpu_client_share;
        e.cpu_server_share = r.cpu_server_share;
        e.round_trips_us = split[k];
        detail::set_latency_figures(e, std::move(split[k]));
    }
    return out;
}

void print(const alternating_result& r, std::ostream& out) {
    using namespace detail;
    const auto& a = r.first;
    const auto& b = r.second;
    const auto& c = a.cfg;
    const double ratio = a.median_us / b.median_us;
    std::ostringstream s;
    if (c.json) {
        auto figures = [&](const char* prefix, const result& x) {
            s << ",\"" << prefix << "median_us\":" << fmt("%.3f", x.median_us) << ",\"" << prefix
              << "p99_us\":" << fmt("%.3f", x.p99_us) << ",\"" << prefix
              << "p999_us\":" << fmt("%.3f", x.p999_us) << ",\"" << prefix
              << "mean_us\":" << fmt("%.3f", x.mean_us) << ",\"" << prefix
              << "min_us\":" << fmt("%.3f", x.min_us) << ",\"" << prefix
              << "max_us\":" << fmt("%.3f", x.max_us);
        };
        s << "{\"system\":" << json_string(a.cfg.system)
          << ",\"versus\":" << json_string(b.cfg.system)
          << ",\"test\":\"latency\",\"size\":" << c.size << ",\"count\":" << a.samples
          << ",\"versus_count\":" << b.samples << ",\"block\":" << r.block
          << ",\"cpu_server\":" << c.cpu_server << ",\"cpu_client\":" << c.cpu_client
          << ",\"buffer_size\":" << c.buffer_size;
        figures("", a);
        figures("versus_", b);
        s << ",\"ratio\":" << fmt("%.4f", ratio) << "}\n";
    } else {
        s << a.cfg.system << " and " << b.cfg.system << " latency, taking turns every "
          << (r.block == 1 ? std::string("round trip") : std::to_string(r.block) + " round trips")
          << ": " << a.samples + b.samples << " round trips of " << human_size(c.size) << ", "
          << placement(c) << "\n";
        for (const result* x : {&a, &b})
            s << "  " << x->cfg.system << ": median " << fmt("%.2f", x->median_us) << " us   p99 "
              << fmt("%.2f", x->p99_us) << " us   (mean " << fmt("%.2f", x->mean_us) << ", min "
              << fmt("%.2f", x->min_us) << ", " << x->samples << " round trips)\n";
        s << "  " << a.cfg.system << " / " << b.cfg.system << ": " << fmt("%.3f", ratio)
          << "x (medians)\n";
    }
    out << s.str() << std::flush;
}

}  // namespace npipe::bench
