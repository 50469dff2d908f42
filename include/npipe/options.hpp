// npipe/options.hpp: the enums and option structs shared by every pipe type (.NET's names).
#pragma once

#include <cstddef>

namespace npipe {

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

    /// Server: fail with errc::name_in_use unless this is the first instance of the name.
    bool first_pipe_instance = false;

    /// Kernel receive / send buffer sizes for the connection (SO_RCVBUF / SO_SNDBUF);
    /// 0 keeps the system default. Larger buffers raise throughput for large writes.
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
};

}  // namespace npipe
