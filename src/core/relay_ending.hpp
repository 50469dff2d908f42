// How a relay ends, as both platforms' npipe::relay record it (each under its own lock), and the
// relay_result made of it (core/relay_result.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

#include "npipe/relay.hpp"

namespace npipe::detail {

struct relay_ending {
    std::optional<relay_end> end;  ///< the first reason recorded
    std::error_code error;
    std::string_view operation;

    /// Records why the relay ends, unless a reason came first; true when this one is it.
    bool record(relay_end why, std::error_code ec, std::string_view what) noexcept;

    /// The result: how it ended (completed when nothing was recorded) and what moved.
    relay_result result(bool input_ended, std::uint64_t sent, std::uint64_t received) const;
};

}  // namespace npipe::detail
