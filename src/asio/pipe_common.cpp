// What npipe::asio's public classes do the same way on every platform: their accessors, the
// checks before a read or write, the acceptor's instance quota, making an accepted pipe. The
// platforms' I/O is in pipe_impl.cpp, acceptor.cpp and connect.cpp (Linux) and windows/ (Windows).
#include "asio/instance_pool.hpp"
#include "core/pipe_state.hpp"
#include "core/platform.hpp"
#include "core/transport.hpp"
#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/asio/named_pipe_client.hpp"
#include "npipe/errors.hpp"

namespace npipe::asio {
namespace detail {

std::error_code check_read(const pipe_impl* impl) noexcept {
    if (!impl || !impl->is_open())
        return npipe::errc::not_connected;
    if (impl->direction == pipe_direction::out)
        return npipe::errc::wrong_direction;
    return {};
}

std::error_code check_write(const pipe_impl* impl) noexcept {
    if (!impl || !impl->is_open())
        return npipe::errc::not_connected;
    if (impl->direction == pipe_direction::in)
        return npipe::errc::wrong_direction;
    if (impl->write_broken)
        return npipe::errc::broken_pipe;
    return {};
}

bool acceptor_impl::try_acquire_slot() noexcept {
    return !pool || pool->try_acquire();
}

void acceptor_impl::release_slot() noexcept {
    if (pool)
        pool->release();
}

void acceptor_impl::drain_wake() noexcept {
    if (pool)
        pool->drain();
}

// Wraps an admitted connection as an accepted pipe, holding the slot it took.
std::shared_ptr<pipe_impl> acceptor_impl::make_pipe(
    const ::asio::any_io_executor& ex, std::shared_ptr<npipe::detail::transport> connection,
    std::error_code& ec) {
    std::shared_ptr<pipe_impl> p;
    try {
        p = std::make_shared<pipe_impl>(ex);
        p->name = name;
    } catch (const std::bad_alloc&) {
        connection->close();
        release_slot();
        ec = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
    p->direction = direction;
    p->max_message_size = options.max_message_size;
    p->read_mode = mode;  // a message server starts in message read mode, as on Windows
    p->adopt(std::move(connection), mode, ec);
    if (ec) {
        release_slot();
        return nullptr;
    }
    p->pool = pool;  // the pipe gives the slot back when it is closed or destroyed
    return p;
}

}  // namespace detail

std::size_t pipe_stream::available() const {
    std::error_code ec;
    auto n = available(ec);
    npipe::detail::throw_if(ec, pipe_name(), "available");
    return n;
}

npipe::transmission_mode pipe_stream::transmission_mode() const {
    if (!impl_ || !impl_->transmission_known)
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "transmission mode");
    return impl_->transmission;
}

npipe::transmission_mode pipe_stream::read_mode() const noexcept {
    return impl_ ? impl_->read_mode : npipe::transmission_mode::byte;
}

void pipe_stream::set_read_mode(npipe::transmission_mode mode) {
    if (mode == npipe::transmission_mode::message) {
        if (!impl_ || !impl_->transmission_known)
            npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "set read mode");
        if (impl_->transmission != npipe::transmission_mode::message)
            npipe::detail::throw_if(npipe::errc::not_supported, pipe_name(),
                                    "set message read mode on a byte pipe");
    }
    if (impl_)
        impl_->read_mode = mode;
}

peer_credentials pipe_stream::get_peer_credentials() const {
    if (!is_open())
        npipe::detail::throw_if(npipe::errc::not_connected, pipe_name(), "get peer credentials");
    std::error_code ec;
    auto peer = impl_->transport->peer(ec);
    npipe::detail::throw_if(ec, pipe_name(), "get peer credentials");
    return peer;
}

pipe_stream::native_handle_type pipe_stream::native_handle() const noexcept {
    return is_open() ? impl_->transport->native_handle() : npipe::detail::platform::invalid_handle;
}

const std::string& pipe_stream::pipe_name() const noexcept {
    static const std::string none;
    return impl_ ? impl_->name : none;
}

npipe::transmission_mode named_pipe_acceptor::transmission_mode() const noexcept {
    return impl_ ? impl_->mode : npipe::transmission_mode::byte;
}

int named_pipe_acceptor::max_instances() const noexcept {
    return impl_ ? impl_->max_instances : max_allowed_server_instances;
}

const std::string& named_pipe_acceptor::pipe_name() const noexcept {
    static const std::string none;
    return impl_ ? impl_->name : none;
}

const std::string& named_pipe_acceptor::socket_path() const noexcept {
    static const std::string none;
    return impl_ ? impl_->path : none;
}

const std::string& named_pipe_client::socket_path() const noexcept {
    static const std::string none;
    return impl() ? impl()->path : none;
}

named_pipe_acceptor::named_pipe_acceptor(const executor_type& ex, std::string_view name,
                                         pipe_direction direction, int max_instances,
                                         npipe::transmission_mode mode, pipe_options options)
    : ex_(ex), impl_(std::make_shared<detail::acceptor_impl>(ex)) {
    impl_->open(name, direction, max_instances, mode, options);
}

}  // namespace npipe::asio
