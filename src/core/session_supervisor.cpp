// session_supervisor's public functions, the same on every platform over its impl
// (core/session_supervisor_impl.hpp).
#include "npipe/session_supervisor.hpp"

#include "core/session_supervisor_impl.hpp"
#include "npipe/errors.hpp"

namespace npipe {

void session_supervisor::impl::report(const std::vector<session_end>& ended) {
    if (ended.empty())
        return;
    if (options.on_end) {
        for (auto& e : ended)
            options.on_end(e);
    }
    std::lock_guard lock(mutex);
    forget_ended();
    changed.notify_all();
}

session_supervisor::session_supervisor(std::vector<std::string> argv, supervisor_options options) {
    if (argv.empty())
        throw pipe_error(errc::invalid_argument, "", "supervise sessions: empty command");
    if (int error = detail::find_program(argv[0]))
        throw pipe_error(std::error_code(error, std::generic_category()), "",
                         "start process '" + argv[0] + "'");
    impl_ = detail::make_supervisor(std::move(argv), std::move(options));
}

session_supervisor::~session_supervisor() {
    stop();
    wait_all();
    {
        std::lock_guard lock(impl_->mutex);
        impl_->quitting = true;
    }
    impl_->notify_watcher();
    impl_->watcher.join();
}

process_id session_supervisor::start(pipe_stream::native_handle_type connection,
                                     std::error_code& ec) {
    ec.clear();
    if (stopping()) {
        ec = errc::operation_aborted;
        return 0;
    }
    return impl_->start_session(connection, ec);
}

process_id session_supervisor::start(pipe_stream::native_handle_type connection) {
    std::error_code ec;
    process_id pid = start(connection, ec);
    if (ec)
        throw pipe_error(ec, "", "start process '" + impl_->argv[0] + "'");
    return pid;
}

std::size_t session_supervisor::active() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->count();
}

bool session_supervisor::wait_for_room(std::size_t limit) {
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait(lock, [&] { return impl_->stopping || impl_->count() < limit; });
    return !impl_->stopping;
}

void session_supervisor::wait_all() {
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait(lock, [&] { return impl_->count() == 0; });
}

void session_supervisor::stop() {
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopping)
            return;
        impl_->stopping = true;
        impl_->ask_all_to_end();
        impl_->kill_at = impl::clock::now() + impl_->options.kill_grace;
        impl_->changed.notify_all();
    }
    impl_->notify_watcher();
}

void session_supervisor::kill_all() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        impl_->kill_all_now();
        impl_->changed.notify_all();
    }
    impl_->notify_watcher();
}

bool session_supervisor::stopping() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->stopping;
}

const std::string& session_supervisor::program() const {
    return impl_->argv.front();
}

}  // namespace npipe
