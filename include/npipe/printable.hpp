// npipe/printable.hpp: text from other people (pipe names, peer requests) made safe to print.
#pragma once

#include <string>
#include <string_view>

namespace npipe {

/// `text` with every byte that could forge or disturb a line of a log or a terminal escaped:
/// control characters (newline, carriage return, escape, ...), DEL and every byte from 0x80 on
/// become `\xHH` (`\n`, `\r`, `\t` for the common three) and a backslash becomes `\\`. Printable
/// ASCII is unchanged, so ordinary names read as they are, and distinct inputs stay distinct.
/// Non-ASCII letters are escaped too: a terminal would otherwise read some UTF-8 sequences
/// (and raw 0x80-0x9f bytes) as control codes. Use it on every name or string a peer or another
/// user chose before it goes into a log line or human-readable output.
inline std::string printable(std::string_view text) {
    constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (byte == '\\') {
            out += "\\\\";
        } else if (byte >= 0x20 && byte < 0x7f) {
            out += c;
        } else if (byte == '\n') {
            out += "\\n";
        } else if (byte == '\r') {
            out += "\\r";
        } else if (byte == '\t') {
            out += "\\t";
        } else {
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 0xf];
        }
    }
    return out;
}

}  // namespace npipe
