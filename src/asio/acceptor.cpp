#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "asio/instance_pool.hpp"
#include "core/pipe_state.hpp"
#include "npipe/asio/named_pipe_acceptor.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"
#include "platform/posix/local_socket.hpp"
#include "platform/posix/unique_fd.hpp"

namespace npipe::asio {
namespace detail {

acceptor_impl::acceptor_impl(const ::asio::any_io_executor& ex) : listener(ex), wake(ex) {}

acceptor_impl::~acceptor_impl() {
    close();
}

void acceptor_impl::open(std::string_view name_, pipe_direction direction_, int max_instances_,
                         npipe::transmission_mode mode_, const pipe_options& options_) {
    name = std::string(name_);
    direction = direction_;
    max_instances = max_instances_;
    mode = mode_;
    options = options_;
    if (mode != npipe::transmission_mode::byte && mode != npipe::transmission_mode::message)
        throw pipe_error(npipe::errc::invalid_argument, name,
                         "create server: unknown transmission mode");
    if (max_instances != max_allowed_server_instances &&
        (max_instances < 1 || max_instances > max_server_instances_limit))
        throw pipe_error(npipe::errc::invalid_argument, name,
                         "create server: max_instances must be 1..254 or "
                         "max_allowed_server_instances");
    path = npipe::pipe_path(name);
    if (max_instances != max_allowed_server_instances) {
        pool = std::make_shared<instance_pool>(max_instances, name);
        npipe::detail::unique_fd copy(::fcntl(pool->wake_fd(), F_DUPFD_CLOEXEC, 0));
        std::error_code ec;
        if (copy)
            wake.assign(copy.get(), ec);
        if (!copy || ec)
            throw pipe_error(copy ? ec : std::error_code(errno, std::system_category()), name,
                             "create server: watch the instance wake-up eventfd");
        copy.release();
    }
    // The same listen logic as named_pipe_server: never take a live server's name, replace a
    // crashed server's stale socket (ours only), never delete a file that is not a socket,
    // refuse directories another user could tamper with. The file's mode and group hold from
    // the moment it exists: socket_mode, else 0600 with current_user_only, else the umask.
    npipe::detail::listen_spec spec;
    spec.type = mode == npipe::transmission_mode::message ? SOCK_SEQPACKET : SOCK_STREAM;
    spec.mode = options.socket_mode;
    if (!spec.mode && options.current_user_only)
        spec.mode = 0600;
    spec.group = options.socket_group;
    std::error_code ec;
    std::string why;
    auto fd = npipe::detail::listen_at(path, spec, bound, ec, why);
    if (ec)
        throw pipe_error(ec, name,
                         "create server at " + path + (why.empty() ? "" : " (" + why + ")"));
    listener.assign(::asio::generic::stream_protocol(AF_UNIX, 0), fd.get(), ec);
    if (ec) {
        npipe::detail::unlink_if_same(path, bound);
        throw pipe_error(ec, name, "create server at " + path);
    }
    fd.release();
}

void acceptor_impl::close() noexcept {
    ++close_generation;
    std::error_code ignored;
    if (listener.is_open()) {
        listener.close(ignored);
        npipe::detail::unlink_if_same(path, bound);
    }
    wake.close(ignored);
}

void acceptor_impl::cancel() noexcept {
    ++cancel_generation;
    std::error_code ignored;
    listener.cancel(ignored);
    wake.cancel(ignored);
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

int acceptor_impl::try_accept(std::error_code& ec) noexcept {
    // Refused clients are taken a few at a time: a flood of them (another user's connect loop)
    // must not keep the event loop from the admitted clients' I/O.
    constexpr int max_refusals_per_call = 16;
    for (int refused = 0;;) {
        npipe::detail::unique_fd fd(
            ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!fd) {
            // The client gave up before we got to it: take the next one.
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            ec = npipe::detail::errno_code(errno);
            return -1;
        }
        // current_user_only and accept_peer: a refused client is closed before a byte moves
        // (it reads end of stream) and the next one is taken.
        if (!npipe::detail::admit_peer(fd.get(), options)) {
            if (++refused == max_refusals_per_call) {
                ec = std::make_error_code(std::errc::interrupted);
                return -1;
            }
            continue;
        }
        npipe::detail::set_buffer_sizes(fd.get(), options.in_buffer_size, options.out_buffer_size);
        if (direction == pipe_direction::in)
            ::shutdown(fd.get(), SHUT_WR);
        if (direction == pipe_direction::out)
            ::shutdown(fd.get(), SHUT_RD);
        ec.clear();
        return fd.release();
    }
}

std::shared_ptr<pipe_impl> acceptor_impl::make_pipe(const ::asio::any_io_executor& ex, int fd,
                                                    std::error_code& ec) {
    std::shared_ptr<pipe_impl> p;
    try {
        p = std::make_shared<pipe_impl>(ex);
        p->name = name;
    } catch (const std::bad_alloc&) {
        npipe::detail::unique_fd drop(fd);
        release_slot();
        ec = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
    p->direction = direction;
    p->max_message_size = options.max_message_size;
    p->read_mode = mode;  // a message server starts in message read mode, as on Windows
    p->adopt(fd, mode, ec);
    if (ec) {
        release_slot();
        return nullptr;
    }
    p->pool = pool;  // the pipe gives the slot back when it is closed or destroyed
    return p;
}

}  // namespace detail

named_pipe_acceptor::named_pipe_acceptor(const executor_type& ex, std::string_view name,
                                         pipe_direction direction, int max_instances,
                                         npipe::transmission_mode mode, pipe_options options)
    : ex_(ex), impl_(std::make_shared<detail::acceptor_impl>(ex)) {
    impl_->open(name, direction, max_instances, mode, options);
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

}  // namespace npipe::asio
