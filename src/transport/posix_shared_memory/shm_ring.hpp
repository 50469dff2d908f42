// The shared memory of a shared-memory pipe (docs/protocol.md, "Shared memory"): a control page
// and two single-producer single-consumer byte rings, one per direction. The peer maps the same
// pages and may write anything into them at any time, so every index read from them is checked
// against this end's own copy before it is used: a ring that makes no sense reports `corrupt`
// and is never read or written out of its bounds. Calls no OS function (the fuzz target drives
// it over plain memory).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace npipe::detail::shm {

/// The control page: ring r's control block at r * 512; in it four lines 128 bytes apart (two
/// cache lines, so that the adjacent-line prefetch does not pair them): the write index, the
/// writer's flags (done, waiting), the read index, the reader's flags (gone, waiting). The two
/// ends never write the same line in the steady state, and the flags, checked at every read and
/// write, stay cached on both sides while the indices move.
inline constexpr std::size_t control_size = 4096;
inline constexpr std::size_t min_ring_size = 4096;
inline constexpr std::size_t max_ring_size = std::size_t{256} << 20;

/// Ring 0 carries client-to-server bytes, ring 1 server-to-client bytes.
inline constexpr std::size_t client_to_server = 0, server_to_client = 1;

inline constexpr bool valid_ring_size(std::uint64_t size) noexcept {
    return size >= min_ring_size && size <= max_ring_size && (size & (size - 1)) == 0;
}

/// The bytes a connection maps: the control page, then ring 0's data, then ring 1's.
inline constexpr std::size_t mapping_size(std::uint64_t ring0, std::uint64_t ring1) noexcept {
    return control_size + static_cast<std::size_t>(ring0) + static_cast<std::size_t>(ring1);
}

/// The client's first record on the rendezvous connection (with the memfd and the bell socket
/// as SCM_RIGHTS): 32 bytes, little-endian.
struct hello {
    static constexpr std::uint64_t magic = 0x6d68'7365'7069'706eull;  // "npipeshm"
    /// 2: the control block's four-line layout (version 1 had two lines; a version-1 hello is
    /// refused, so two builds that disagree fall back to nothing rather than misread the rings).
    static constexpr std::uint32_t current_version = 2;
    static constexpr std::size_t size = 32;
    std::uint64_t ring_size[2] = {0, 0};

    void encode(std::byte (&out)[size]) const noexcept;
    /// False unless `in` is a version-1 hello with valid ring sizes.
    bool decode(std::span<const std::byte> in) noexcept;
};

enum class ring_status { ok, empty_or_full, corrupt };

namespace layout {
inline constexpr std::size_t ring_stride = 512;
inline constexpr std::size_t write_index = 0, writer_done = 128, writer_waiting = 132;
inline constexpr std::size_t read_index = 256, reader_gone = 384, reader_waiting = 388;
}  // namespace layout

/// One end's view of one ring: where its control block and data are, and this end's own
/// position in it (never read back from the shared memory).
class ring_view {
  public:
    ring_view() noexcept = default;
    /// `base`: the mapping's start (page-aligned); `ring`: 0 or 1; the sizes as agreed in the
    /// hello (validated), not as the memory says now.
    ring_view(std::byte* base, std::size_t ring, const std::uint64_t (&sizes)[2]) noexcept;

  protected:
    template <class T>
    std::atomic_ref<T> field(std::size_t offset) const noexcept {
        return std::atomic_ref<T>(*reinterpret_cast<T*>(control_ + offset));
    }
    std::byte* control_ = nullptr;
    std::byte* data_ = nullptr;
    std::uint64_t capacity_ = 0;
    std::uint64_t position_ = 0;  ///< our read or write index
};

/// The consuming end of a ring.
class ring_reader : public ring_view {
  public:
    using ring_view::ring_view;
    /// Copies up to buffer.size() available bytes (fewer when fewer are there) and publishes
    /// the space freed. 0 with empty_or_full when nothing is there; corrupt when the peer's
    /// write index is not within one ring of ours.
    std::size_t read(std::span<std::byte> buffer, ring_status& status) noexcept;
    /// Whether bytes are waiting (corrupt indices count as "something to look at").
    bool readable() const noexcept;
    /// How many bytes are waiting (0 when the indices make no sense).
    std::uint64_t available() const noexcept;
    /// The writer said it will write no more (shutdown or close).
    bool writer_done() const noexcept {
        return field<std::uint32_t>(layout::writer_done).load(std::memory_order_seq_cst) != 0;
    }
    /// Before sleeping: asks the writer to ring the bell at its next write. Sequentially
    /// consistent with the writer's publication, so either it sees the flag or we see its bytes.
    void set_waiting() noexcept;
    /// After freeing space: whether a writer sleeps for it (the flag is taken, so one bell
    /// rings per sleep).
    bool take_writer_waiting() noexcept;
    /// This end reads no more: the writer's writes fail.
    void mark_gone() noexcept {
        field<std::uint32_t>(layout::reader_gone).store(1, std::memory_order_seq_cst);
    }
};

/// The producing end of a ring.
class ring_writer : public ring_view {
  public:
    using ring_view::ring_view;
    /// Copies as much of the concatenated pieces as there is room for and publishes it. 0 with
    /// empty_or_full when the ring is full; corrupt when the peer's read index is not within
    /// one ring behind ours.
    /// `skip`: bytes at the start of the concatenation already written; `limit`: write at most
    /// this many (a writer publishes a large write in parts, so the reader can start on it).
    std::size_t write(std::span<const std::span<const std::byte>> pieces, ring_status& status,
                      std::size_t skip = 0, std::size_t limit = SIZE_MAX) noexcept;
    /// Whether there is room (corrupt indices count as "something to look at").
    bool writable() noexcept;
    bool reader_gone() const noexcept {
        return field<std::uint32_t>(layout::reader_gone).load(std::memory_order_seq_cst) != 0;
    }
    void set_waiting() noexcept;
    bool take_reader_waiting() noexcept;
    /// This end writes no more: the reader gets end of stream once it has read everything.
    void mark_done() noexcept {
        field<std::uint32_t>(layout::writer_done).store(1, std::memory_order_seq_cst);
    }

  private:
    /// The reader's index as last loaded (and validated): a write that fits in the room it
    /// leaves does not touch the reader's line, which the reader writes at every read.
    std::uint64_t read_seen_ = 0;
    /// Loads the reader's index; false when it is not within one ring behind ours.
    bool load_read_index() noexcept;
};

}  // namespace npipe::detail::shm
