// The portable part of pipe_state: connections, close and the blocking waits' policy.
#include "core/pipe_state.hpp"

#include "core/named_pipe_rules.hpp"
#include "npipe/errors.hpp"

namespace npipe::detail {

pipe_state::pipe_state(std::string name_, pipe_direction direction_) try
    : name(name_), direction(direction_) {
} catch (const std::system_error& e) {
    // The wake-up event could not be made (out of descriptors): say which pipe it was for.
    throw pipe_error(e.code(), name_, "create wake-up event");
}

pipe_state::~pipe_state() = default;

void pipe_state::tune(const pipe_options& options) noexcept {
    coalesce_messages = options.coalesce_messages;
    spin = options.spin_before_block;
    max_message_size = options.max_message_size;
    // With one CPU online the peer we wait for cannot run while we poll: polling only delays it.
    if (spin.count() > 0 && platform::online_cpus() <= 1)
        spin = {};
}

void pipe_state::attach(std::shared_ptr<transport> connection, std::error_code& ec) noexcept {
    apply_direction(*connection, direction);
    conn = std::move(connection);
    broken = false;
    eof = false;
    ec.clear();
    if (transmission == transmission_mode::message) {
        attach_message_channel(max_message_size, ec);
        if (ec)
            drop_connection();
    }
}

void pipe_state::attach_message_channel(std::size_t max_size, std::error_code& ec) noexcept {
    try {
        messages = std::make_unique<message_channel>(conn, max_size);
        if (coalesce_messages)
            messages->enable_coalescing();
        if (spin.count() > 0 && !conn->peer_shares_our_only_cpu())
            messages->set_spin(spin);
        ec.clear();
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
}

void pipe_state::drop_connection(bool end_for_everyone) noexcept {
    // Ending first: a thread blocked in a read on this connection returns instead of sleeping
    // on a handle that may be reused after close. It ends the connection for every process
    // holding a copy, so a plain disconnect (a child may have the connection, as with
    // `npipe serve -- CMD`) only closes ours.
    if (!conn)
        return;
    if (messages)
        messages->flush_if_idle();
    if (end_for_everyone)
        conn->end();
    conn->close();
    conn.reset();
    broken = false;
}

void pipe_state::close() noexcept {
    if (closed.exchange(true))
        return;
    if (messages && conn)
        messages->flush_if_idle();  // coalesced messages still go out, as at a disconnect
    wake_.signal();
    // Another thread may be inside a read or write on the connection right now: end() wakes it
    // and ends the connection for the peer, while the handle itself stays allocated (where the
    // transport can) until the state is destroyed, so it cannot be reused under that thread.
    if (conn)
        conn->end();
    on_close();
}

std::error_code pipe_state::wait_readable(
    platform::handle handle, std::optional<std::chrono::steady_clock::time_point> deadline) {
    if (closed)
        return errc::operation_aborted;
    std::error_code ec;
    switch (platform::wait(wake_, handle, deadline, ec)) {
        case platform::wait_result::ready:
            return closed ? std::error_code(errc::operation_aborted) : ec;
        case platform::wait_result::woken:
            return errc::operation_aborted;
        case platform::wait_result::timed_out:
            return closed ? errc::operation_aborted : errc::timed_out;
    }
    return ec;
}

bool pipe_state::sleep_until(std::chrono::steady_clock::time_point until) {
    return wait_readable(platform::invalid_handle, until) == errc::operation_aborted;
}

void throw_error(const std::error_code& ec, const std::string& pipe_name,
                 std::string_view operation) {
    throw pipe_error(ec, pipe_name, operation);
}

}  // namespace npipe::detail
