#include "transport/posix_shared_memory/shm_ring.hpp"

#include <algorithm>

namespace npipe::detail::shm {

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free &&
                  std::atomic_ref<std::uint32_t>::is_always_lock_free,
              "the rings' indices and flags are shared between processes: they must be "
              "lock-free atomics");

namespace {

void put64(std::byte* at, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i)
        at[i] = static_cast<std::byte>(v >> (8 * i));
}

std::uint64_t get64(const std::byte* at) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<std::uint64_t>(at[i]) << (8 * i);
    return v;
}

}  // namespace

void hello::encode(std::byte (&out)[size]) const noexcept {
    put64(out, magic);
    put64(out + 8, current_version);  // version (low 32 bits), flags (high 32 bits): none yet
    put64(out + 16, ring_size[0]);
    put64(out + 24, ring_size[1]);
}

bool hello::decode(std::span<const std::byte> in) noexcept {
    if (in.size() != size || get64(in.data()) != magic || get64(in.data() + 8) != current_version)
        return false;
    ring_size[0] = get64(in.data() + 16);
    ring_size[1] = get64(in.data() + 24);
    return valid_ring_size(ring_size[0]) && valid_ring_size(ring_size[1]);
}

ring_view::ring_view(std::byte* base, std::size_t ring, const std::uint64_t (&sizes)[2]) noexcept
    : control_(base + ring * layout::ring_stride),
      data_(base + control_size + (ring == 0 ? 0 : sizes[0])),
      capacity_(sizes[ring]) {}

std::size_t ring_reader::read(std::span<std::byte> buffer, ring_status& status) noexcept {
    const std::uint64_t written =
        field<std::uint64_t>(layout::write_index).load(std::memory_order_seq_cst);
    const std::uint64_t available = written - position_;
    if (available > capacity_) {
        status = ring_status::corrupt;
        return 0;
    }
    if (available == 0 || buffer.empty()) {
        status = available == 0 ? ring_status::empty_or_full : ring_status::ok;
        return 0;
    }
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(available, buffer.size()));
    const std::size_t at = static_cast<std::size_t>(position_ & (capacity_ - 1));
    const std::size_t first = std::min(n, static_cast<std::size_t>(capacity_) - at);
    std::memcpy(buffer.data(), data_ + at, first);
    std::memcpy(buffer.data() + first, data_, n - first);
    position_ += n;
    field<std::uint64_t>(layout::read_index).store(position_, std::memory_order_seq_cst);
    status = ring_status::ok;
    return n;
}

bool ring_reader::readable() const noexcept {
    return field<std::uint64_t>(layout::write_index).load(std::memory_order_seq_cst) != position_;
}

std::uint64_t ring_reader::available() const noexcept {
    const std::uint64_t waiting =
        field<std::uint64_t>(layout::write_index).load(std::memory_order_seq_cst) - position_;
    return waiting > capacity_ ? 0 : waiting;  // garbage: the next read reports it
}

void ring_reader::set_waiting() noexcept {
    field<std::uint32_t>(layout::reader_waiting).store(1, std::memory_order_seq_cst);
}

bool ring_reader::take_writer_waiting() noexcept {
    auto flag = field<std::uint32_t>(layout::writer_waiting);
    return flag.load(std::memory_order_seq_cst) != 0 && flag.exchange(0) != 0;
}

bool ring_writer::load_read_index() noexcept {
    const std::uint64_t read =
        field<std::uint64_t>(layout::read_index).load(std::memory_order_seq_cst);
    if (position_ - read > capacity_)
        return false;
    read_seen_ = read;
    return true;
}

std::size_t ring_writer::write(std::span<const std::span<const std::byte>> pieces,
                               ring_status& status, std::size_t skip, std::size_t limit) noexcept {
    std::size_t wanted = 0;
    for (auto piece : pieces)
        wanted += piece.size();
    wanted = std::min(wanted - std::min(wanted, skip), limit);
    // The room last seen only grows while we do not write: look again only when it is short.
    if (capacity_ - (position_ - read_seen_) < wanted && !load_read_index()) {
        status = ring_status::corrupt;
        return 0;
    }
    const std::size_t free = static_cast<std::size_t>(capacity_ - (position_ - read_seen_));
    if (free == 0) {
        status = ring_status::empty_or_full;
        return 0;
    }
    const std::size_t room = std::min(free, limit);
    std::size_t total = 0;
    for (auto piece : pieces) {
        if (skip >= piece.size()) {
            skip -= piece.size();
            continue;
        }
        piece = piece.subspan(skip);
        skip = 0;
        if (room == 0)
            break;
        std::size_t n = std::min(piece.size(), room - total);
        const std::size_t at = static_cast<std::size_t>((position_ + total) & (capacity_ - 1));
        const std::size_t first = std::min(n, static_cast<std::size_t>(capacity_) - at);
        std::memcpy(data_ + at, piece.data(), first);
        std::memcpy(data_, piece.data() + first, n - first);
        total += n;
        if (total == room)
            break;
    }
    position_ += total;
    field<std::uint64_t>(layout::write_index).store(position_, std::memory_order_seq_cst);
    status = ring_status::ok;
    return total;
}

bool ring_writer::writable() noexcept {
    // Corrupt indices count as "something to look at": the next write reports them.
    return !load_read_index() || position_ - read_seen_ != capacity_;
}

void ring_writer::set_waiting() noexcept {
    field<std::uint32_t>(layout::writer_waiting).store(1, std::memory_order_seq_cst);
}

bool ring_writer::take_reader_waiting() noexcept {
    auto flag = field<std::uint32_t>(layout::reader_waiting);
    return flag.load(std::memory_order_seq_cst) != 0 && flag.exchange(0) != 0;
}

}  // namespace npipe::detail::shm
