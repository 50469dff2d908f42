#include "core/transport.hpp"

#include <array>

namespace npipe::detail {

void send_rest(transport& t, std::span<const std::span<const std::byte>> pieces, std::size_t sent,
               std::error_code& ec) noexcept {
    // Skip what went and send the rest.
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
