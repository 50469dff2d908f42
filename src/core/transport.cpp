#include "core/transport.hpp"

#include <array>

namespace npipe::detail {

void send_all(transport& t, std::span<const std::span<const std::byte>> pieces,
              std::error_code& ec) noexcept {
    const bool records = t.keeps_boundaries();
    if (!records) {
        std::size_t total = 0;
        for (auto piece : pieces)
            total += piece.size();
        if (total == 0) {
            ec.clear();  // nothing to send on a stream: no call at all
            return;
        }
    }
    std::size_t sent = t.send(pieces, ec);
    if (ec || records)
        return;
    // A short stream send: skip what went and send the rest.
    std::array<std::span<const std::byte>, 4> rest;
    std::size_t count = 0;
    for (auto piece : pieces) {
        if (sent >= piece.size()) {
            sent -= piece.size();
            continue;
        }
        if (count < rest.size())
            rest[count++] = piece.subspan(sent);
        sent = 0;
    }
    while (count > 0) {
        std::size_t n = t.send(std::span(rest.data(), count), ec);
        if (ec)
            return;
        std::size_t i = 0;
        while (i < count && n >= rest[i].size())
            n -= rest[i++].size();
        if (i < count)
            rest[i] = rest[i].subspan(n);
        std::copy(rest.begin() + i, rest.begin() + count, rest.begin());
        count -= i;
    }
}

}  // namespace npipe::detail
