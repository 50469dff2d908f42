// The framings, sans-I/O: bytes in, documents out; documents in, bytes out.
#include "npipe/rpc/framing.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "npipe/rpc/error.hpp"

namespace npipe::rpc {
namespace {

// A header block larger than this is not one a peer would send (vscode-jsonrpc's and
// StreamJsonRpc's are under 100 bytes): it bounds what a garbage-sending peer makes us buffer.
constexpr std::size_t max_header_block = 4096;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

}  // namespace

std::optional<framing> parse_framing(std::string_view name) noexcept {
    for (auto f : {framing::header, framing::length, framing::newline, framing::message})
        if (name == to_string(f))
            return f;
    return std::nullopt;
}

std::string_view to_string(framing f) noexcept {
    switch (f) {
        case framing::header:
            return "header";
        case framing::length:
            return "length";
        case framing::newline:
            return "newline";
        case framing::message:
            return "message";
    }
    return "?";
}

void encode_frame(framing f, std::string_view document, std::string& out) {
    switch (f) {
        case framing::header:
            out += "Content-Length: ";
            out += std::to_string(document.size());
            out += "\r\n\r\n";
            out += document;
            break;
        case framing::length: {
            auto n = static_cast<std::uint32_t>(document.size());
            out += static_cast<char>(n >> 24);
            out += static_cast<char>(n >> 16);
            out += static_cast<char>(n >> 8);
            out += static_cast<char>(n);
            out += document;
            break;
        }
        case framing::newline:
            out += document;
            out += '\n';
            break;
        case framing::message:
            out += document;
            break;
    }
}

frame_decoder::frame_decoder(framing f, std::size_t max_message_size)
    : framing_(f), max_(max_message_size) {}

void frame_decoder::feed(std::string_view bytes, bool message_end) {
    if (!error_.empty())
        return;
    // Compact before growing, so the buffer holds at most one partial frame plus one read.
    if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
    }
    buffer_.append(bytes);
    if (framing_ == framing::message && message_end) {
        messages_.push_back(buffer_.substr(consumed_));
        buffer_.clear();
        consumed_ = 0;
    }
}

std::optional<std::string> frame_decoder::next(std::error_code& ec) {
    ec.clear();
    if (!error_.empty()) {
        ec = errc::frame_error;
        return std::nullopt;
    }
    switch (framing_) {
        case framing::header:
            return next_header(ec);
        case framing::length:
            return next_length(ec);
        case framing::newline:
            return next_newline(ec);
        case framing::message:
            return next_message(ec);
    }
    return std::nullopt;
}

std::optional<std::string> frame_decoder::fail(std::error_code& ec, std::string why) {
    error_ = std::move(why);
    ec = errc::frame_error;
    buffer_.clear();
    buffer_.shrink_to_fit();
    messages_.clear();
    consumed_ = 0;
    return std::nullopt;
}

std::optional<std::string> frame_decoder::take(std::size_t skip, std::size_t length) {
    std::string doc = buffer_.substr(consumed_ + skip, length);
    consumed_ += skip + length;
    if (consumed_ == buffer_.size()) {
        buffer_.clear();
        consumed_ = 0;
    }
    return doc;
}

std::optional<std::string> frame_decoder::next_header(std::error_code& ec) {
    std::string_view data(buffer_);
    data.remove_prefix(consumed_);
    if (!have_length_) {
        auto end = data.find("\r\n\r\n");
        if (end == std::string_view::npos) {
            if (data.size() > max_header_block)
                return fail(ec, "header block too large");
            // A bare "\n\n" never ends a block (StreamJsonRpc rejects bare line feeds too): say
            // so now rather than waiting for a "\r\n\r\n" that will not come.
            if (data.find("\n\n") != std::string_view::npos)
                return fail(ec, "header lines must end with \\r\\n");
            return std::nullopt;
        }
        if (end > max_header_block)
            return fail(ec, "header block too large");
        std::string_view block = data.substr(0, end + 2);
        std::optional<std::size_t> length;
        while (!block.empty()) {
            auto eol = block.find("\r\n");
            std::string_view line = block.substr(0, eol);
            block.remove_prefix(eol + 2);
            if (line.find('\n') != std::string_view::npos ||
                line.find('\r') != std::string_view::npos)
                return fail(ec, "header lines must end with \\r\\n");
            auto colon = line.find(':');
            if (colon == std::string_view::npos)
                return fail(ec, "header line without ':'");
            if (!iequals(trim(line.substr(0, colon)), "Content-Length"))
                continue;
            auto value = trim(line.substr(colon + 1));
            std::size_t n = 0;
            auto [p, err] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (err != std::errc() || p != value.data() + value.size() || value.empty())
                return fail(ec, "bad Content-Length");
            length = n;
        }
        if (!length)
            return fail(ec, "no Content-Length header");
        if (*length > max_)
            return fail(ec, "message larger than the limit");
        consumed_ += end + 4;
        pending_length_ = *length;
        have_length_ = true;
        data.remove_prefix(end + 4);
    }
    if (data.size() < pending_length_)
        return std::nullopt;
    have_length_ = false;
    return take(0, pending_length_);
}

std::optional<std::string> frame_decoder::next_length(std::error_code& ec) {
    std::string_view data(buffer_);
    data.remove_prefix(consumed_);
    if (data.size() < 4)
        return std::nullopt;
    auto b = [&](int i) { return static_cast<std::size_t>(static_cast<unsigned char>(data[i])); };
    std::size_t length = b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
    if (length > max_)
        return fail(ec, "message larger than the limit");
    if (data.size() - 4 < length)
        return std::nullopt;
    return take(4, length);
}

std::optional<std::string> frame_decoder::next_newline(std::error_code& ec) {
    for (;;) {
        std::string_view data(buffer_);
        data.remove_prefix(consumed_);
        auto eol = data.find('\n');
        if (eol == std::string_view::npos) {
            if (data.size() > max_)
                return fail(ec, "message larger than the limit");
            return std::nullopt;
        }
        std::size_t length = eol;
        if (length > 0 && data[length - 1] == '\r')
            --length;
        if (length > max_)
            return fail(ec, "message larger than the limit");
        if (trim(data.substr(0, length)).empty()) {  // blank lines between documents
            consumed_ += eol + 1;
            continue;
        }
        auto doc = take(0, length);
        consumed_ += eol + 1 - length;
        if (consumed_ >= buffer_.size()) {
            buffer_.clear();
            consumed_ = 0;
        }
        return doc;
    }
}

std::optional<std::string> frame_decoder::next_message(std::error_code& ec) {
    if (buffer_.size() - consumed_ > max_)
        return fail(ec, "message larger than the limit");
    while (!messages_.empty()) {
        std::string doc = std::move(messages_.front());
        messages_.pop_front();
        if (doc.size() > max_)
            return fail(ec, "message larger than the limit");
        if (!doc.empty())
            return doc;  // an empty message carries no document
    }
    return std::nullopt;
}

}  // namespace npipe::rpc
