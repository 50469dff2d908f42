// The helpers of test_support.hpp that need no operating system of their own: built into the
// test support library on every platform (Linux and Windows).
#include <algorithm>
#include <atomic>
#include <vector>

#ifdef _WIN32
#include <windows.h>
#else
#include <unistd.h>
#endif

#include "support/test_support.hpp"

namespace npipe::test {
namespace {

long current_process_id() {
#ifdef _WIN32
    return static_cast<long>(::GetCurrentProcessId());
#else
    return static_cast<long>(::getpid());
#endif
}

}  // namespace

std::string transport_name(transport_kind kind) {
    return kind == transport_kind::socket ? "socket" : "shared_memory";
}

void PrintTo(transport_kind kind, std::ostream* os) {
    *os << transport_name(kind);
}

std::string unique_pipe_name(const std::string& tag) {
    static std::atomic<int> counter{0};
    return "npipe-test-" + std::to_string(current_process_id()) + "-" + std::to_string(++counter) +
           "-" + tag;
}

npipe::errc error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const npipe::pipe_error& e) {
        if (e.code().category() == npipe::pipe_category())
            return static_cast<npipe::errc>(e.code().value());
        ADD_FAILURE() << "not an npipe code: " << e.what();
        return {};
    }
    ADD_FAILURE() << "no error";
    return {};
}

std::string pattern(std::size_t size, std::uint32_t seed) {
    std::string data(size, '\0');
    std::uint32_t x = seed ? seed : 1;
    for (auto& c : data) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return data;
}

namespace pipe_io {

std::span<const std::byte> bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string read_n(npipe::pipe_stream& pipe, std::size_t n) {
    std::string out;
    std::byte buffer[4096];
    while (out.size() < n) {
        auto got = pipe.read(std::span(buffer, std::min(sizeof buffer, n - out.size())));
        if (got == 0)
            break;
        out.append(reinterpret_cast<const char*>(buffer), got);
    }
    return out;
}

std::string read_to_end(npipe::pipe_stream& pipe) {
    std::string data;
    std::vector<std::byte> buffer(256 * 1024);
    while (auto n = pipe.read(buffer))
        data.append(reinterpret_cast<const char*>(buffer.data()), n);
    return data;
}

int line_count(const std::string& text) {
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace pipe_io

}  // namespace npipe::test
