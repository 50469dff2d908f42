// npipe/rpc/framing.hpp: how JSON-RPC documents are delimited on a pipe, as a sans-I/O layer
// (it never reads or writes: the caller feeds it the bytes it received).
#pragma once
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace npipe::rpc {

/// The framings StreamJsonRpc and vscode-jsonrpc speak (docs/rpc.md has the exact wire forms).
enum class framing {
    /// `Content-Length: N\r\n\r\n` then N bytes: LSP, vscode-jsonrpc, StreamJsonRpc's
    /// HeaderDelimitedMessageHandler (the default of JsonRpc.Attach).
    header,
    /// A 4-byte big-endian length, then the document: StreamJsonRpc's LengthHeaderMessageHandler.
    length,
    /// One document per line: StreamJsonRpc's NewLineDelimitedMessageHandler, scripts.
    newline,
    /// One npipe (or .NET) pipe message is one document: for message-mode pipes.
    message,
};

/// "header", "length", "newline" or "message"; std::nullopt for anything else.
std::optional<framing> parse_framing(std::string_view name) noexcept;
/// The name parse_framing() accepts.
std::string_view to_string(framing f) noexcept;

/// The largest document a decoder accepts unless told otherwise (64 MiB).
inline constexpr std::size_t default_max_message_size = 64u << 20;

/// Appends `document` framed as `f` to `out` (for framing::message, the document alone: it
/// must then be sent as one pipe message). Header framing writes exactly
/// `Content-Length: N\r\n\r\n`. A newline-framed document must not contain a line feed (this
/// layer's serializer never writes one).
void encode_frame(framing f, std::string_view document, std::string& out);

/// Splits received bytes into documents. Reads the header framing leniently (header names in
/// any case, other headers such as Content-Type ignored) but, as StreamJsonRpc does, requires
/// "\r\n" line ends. A document or header block larger than the limit, a malformed header or
/// length, is a frame error: the stream cannot be resynchronised and should be closed.
class frame_decoder {
  public:
    explicit frame_decoder(framing f, std::size_t max_message_size = default_max_message_size);

    /// Appends received bytes. For framing::message, `message_end` says they end a pipe
    /// message (pipe_stream::is_message_complete() after the read); other framings ignore it.
    void feed(std::string_view bytes, bool message_end = false);

    /// The next whole document, or std::nullopt when more bytes are needed or on a frame error
    /// (ec set to errc::frame_error; every later call fails the same way).
    std::optional<std::string> next(std::error_code& ec);

    /// Bytes received and not yet returned as documents.
    std::size_t buffered() const noexcept { return buffer_.size() - consumed_; }

  private:
    std::optional<std::string> next_header(std::error_code& ec);
    std::optional<std::string> next_length(std::error_code& ec);
    std::optional<std::string> next_newline(std::error_code& ec);
    std::optional<std::string> next_message(std::error_code& ec);
    std::optional<std::string> take(std::size_t skip, std::size_t length);
    std::optional<std::string> fail(std::error_code& ec, std::string why);

    framing framing_;
    std::size_t max_;
    std::string buffer_;
    std::size_t consumed_ = 0;
    std::deque<std::string> messages_;  // framing::message: whole messages not yet returned
    std::size_t pending_length_ = 0;    // header framing: length of a body whose headers are read
    bool have_length_ = false;
    std::string error_;

  public:
    /// Why the last frame error happened ("" when none): for logs and error messages.
    const std::string& error_reason() const noexcept { return error_; }
};

}  // namespace npipe::rpc
