// npipe/options.hpp: the enums and option structs shared by every pipe type (.NET's names).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include "npipe/types.hpp"

namespace npipe {

struct peer_credentials;  // npipe/pipe_stream.hpp
struct remote_options;    // npipe/remote_options.hpp

/// Which way data flows, seen from the end that is being opened (.NET's PipeDirection).
/// On a local pipe, `in` shuts down the socket's write side right after connecting and `out`
/// its read side, exactly as .NET does, so the wire behaviour matches a .NET peer.
enum class pipe_direction { in = 1, out = 2, in_out = 3 };

/// Byte stream or message stream (.NET's PipeTransmissionMode). On Linux .NET supports only
/// `byte`; npipe supports both (see docs/protocol.md for the message wire format).
enum class transmission_mode { byte = 0, message = 1 };

/// Whether a handle is inherited by child processes (.NET's HandleInheritability).
enum class handle_inheritability { none = 0, inheritable = 1 };

/// Pass as max_instances for no limit on the number of server instances (.NET's
/// NamedPipeServerStream.MaxAllowedServerInstances).
inline constexpr int max_allowed_server_instances = -1;

/// The largest explicit instance count, as in .NET (1..254 or max_allowed_server_instances).
inline constexpr int max_server_instances_limit = 254;

/// Options for named pipes (.NET's PipeOptions plus the buffer sizes of its constructors).
struct pipe_options {
    /// Server: refuse clients whose uid differs from this process's effective uid, and create
    /// the socket file with mode 0600. Client: refuse a server owned by another uid.
    bool current_user_only = false;

    /// Server: the socket file's permission bits (0..0777), for example 0660 to let a group in.
    /// The file never exists with looser permissions than these, not even for an instant: the
    /// mode is set on the socket before bind(2) and the umask's cut is given back afterwards.
    /// When unset: 0600 with current_user_only, else the umask decides (as in .NET).
    /// POSIX only (npipe/posix.hpp).
    std::optional<file_mode> socket_mode;

    /// Server: the socket file's group. The file is created readable by its owner only, given
    /// to the group, and only then opened up to socket_mode, so no member of another group can
    /// connect in between. Fails with errc::access_denied when we may not give files to it.
    /// POSIX only (npipe/posix.hpp).
    std::optional<group_id> socket_group;

    /// Server: decides, from the kernel's credentials of a client (SO_PEERCRED), whether it may
    /// connect. Called in wait_for_connection right after accept, before a byte is read or
    /// written; a refused client is closed (it reads end of stream) and the wait goes on for
    /// the next one. Runs after the current_user_only check. An exception counts as a refusal.
    std::function<bool(const peer_credentials&)> accept_peer;

    /// Server: fail with errc::name_in_use unless this is the first instance of the name.
    bool first_pipe_instance = false;

    /// Kernel receive / send buffer sizes for the connection (SO_RCVBUF / SO_SNDBUF);
    /// 0 keeps the system default. Larger buffers raise throughput for large writes. The kernel
    /// caps these at net.core.rmem_max / wmem_max unless the process has CAP_NET_ADMIN (root),
    /// where npipe sets them with SO_RCVBUFFORCE / SO_SNDBUFFORCE instead; without it the cap
    /// applies silently (raise the sysctls to lift it).
    std::size_t in_buffer_size = 0;
    std::size_t out_buffer_size = 0;

    /// Message-mode pipes: the largest message this end sends or accepts, in bytes. A larger
    /// write fails with errc::message_too_large and sends nothing; a larger incoming message
    /// is reported to the reader as errc::message_too_large, its bytes discarded as they
    /// arrive (never buffered), and the messages after it arrive intact. Ignored by byte pipes.
    std::size_t max_message_size = default_max_message_size;

    /// 64 MiB: large enough for bulk transfers, small enough that a reader that gathers
    /// whole messages is not made to buffer gigabytes by a peer.
    static constexpr std::size_t default_max_message_size = std::size_t{64} << 20;

    /// Message pipes: coalesce written messages into one send. write() then appends the whole
    /// message to a 64 KiB buffer, allocated by the first write that uses it (a message that
    /// does not fit goes after the buffered ones
    /// are sent; one larger than the buffer is sent directly), and the buffer goes out when
    /// full, on flush(), when a read on this pipe is about to block, and at disconnect or
    /// close. Messages are never torn or merged and keep their order; concurrent writers never
    /// interleave inside a message. Raises the rate of small messages many times over, at the
    /// cost of holding them until one of those events: call flush() when a message must leave
    /// now. Ignored by byte pipes, which have no buffer.
    bool coalesce_messages = false;

    /// Low-latency mode: a read that finds nothing to read first polls the socket without
    /// blocking for up to this long before it sleeps in the kernel, so an answer arriving
    /// within the window costs no wake-up (typically ~20 us between cores in a VM). Burns one
    /// CPU while it polls; 0 (the default) never polls. Each poll is followed by sched_yield(),
    /// so a peer sharing our CPU still runs; no effect on a machine with one CPU online, nor on a
    /// message pipe whose peer process is confined to the one CPU this end is confined to
    /// (checked when it connects). `npipe bench --spin-us` reports what it costs in CPU time.
    std::chrono::microseconds spin_before_block{0};

    /// Both ends of a local pipe: move the data through memory shared by the two processes
    /// instead of the socket, when the other end is an npipe program that set this too
    /// (docs/protocol.md, "Shared memory"). A server that sets it also listens at
    /// `<socket path>.npipe-shm` (same type, mode and group as the socket file, removed with it)
    /// and still serves every other client, .NET and Mono ones included, on the ordinary
    /// socket; a client that sets it tries that rendezvous first and otherwise connects as
    /// usual. Reads, writes, message boundaries and errors behave as on the socket; a reader or
    /// writer that must wait sleeps in the kernel (spin_before_block still applies to reads).
    /// native_handle() is then a socket that shows the peer's hang-up but not the data: read
    /// instead of polling it for data. npipe::asio pipes use it too (their reactor waits on the
    /// transport's sockets: no thread per pipe).
    /// Linux only (memfd).
    bool shared_memory = false;

    /// Client with shared_memory: the bytes of each of the two rings (one per direction) it
    /// creates for the connection: a power of two from 4 KiB to 256 MiB (otherwise connect
    /// fails with errc::invalid_argument). A pipe maps twice this plus one 4 KiB page; pages
    /// cost memory once touched, so a pipe that moved a ring's worth of data holds about that.
    /// Servers accept the size their client chose.
    std::size_t shared_memory_ring_size = default_shared_memory_ring_size;

    /// 1 MiB per direction.
    static constexpr std::size_t default_shared_memory_ring_size = std::size_t{1} << 20;

    /// Client of a pipe on another machine (through `npipe gateway`): the TLS settings and
    /// token (npipe/remote_options.hpp, npipe::remote). Null: the system's CAs, no client
    /// certificate, no token. Ignored for local pipes.
    std::shared_ptr<const remote_options> remote;
};

}  // namespace npipe
