#include "npipe/named_pipe_server.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "core/named_pipe_rules.hpp"
#include "core/pipe_state.hpp"
#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"

namespace npipe {
namespace detail {
namespace {

// The listening socket of one name, shared by every instance of that name in this process
// (as in .NET). Its destructor runs when the last instance is gone and no wait still uses it.
struct listener {
    std::string path;
    std::unique_ptr<platform::listener> endpoint;  ///< removed when the last instance goes
    int max_instances = 1;
    transmission_mode mode = transmission_mode::byte;
    int instances = 0;  // guarded by registry_mutex
};

std::mutex registry_mutex;
std::unordered_map<std::string, std::weak_ptr<listener>>& registry() {
    static std::unordered_map<std::string, std::weak_ptr<listener>> map;
    return map;
}

std::shared_ptr<listener> acquire_instance(const std::string& path, int max_instances,
                                           transmission_mode mode, const pipe_options& options,
                                           std::error_code& ec, std::string& why) {
    std::lock_guard lock(registry_mutex);
    auto& map = registry();
    if (auto it = map.find(path); it != map.end()) {
        if (auto existing = it->second.lock()) {
            if (options.first_pipe_instance) {
                ec = errc::name_in_use;
                return {};
            }
            if (existing->mode != mode) {
                ec = errc::invalid_argument;  // one listening socket has one type
                return {};
            }
            if (existing->max_instances != max_allowed_server_instances &&
                existing->instances >= existing->max_instances) {
                ec = errc::all_instances_busy;
                return {};
            }
            ++existing->instances;
            return existing;
        }
    }
    auto created = std::make_shared<listener>();
    created->path = path;
    created->max_instances = max_instances;
    created->mode = mode;
    created->endpoint = platform::listen(path, mode, options, ec, why);
    if (ec)
        return {};
    created->instances = 1;
    map[path] = created;
    return created;
}

void release_instance(std::shared_ptr<listener>& l) noexcept {
    if (!l)
        return;
    std::lock_guard lock(registry_mutex);
    if (--l->instances == 0)
        registry().erase(l->path);
    l.reset();
}

}  // namespace

struct server_state : pipe_state {
    server_state(std::string name, pipe_direction direction, int max_instances_,
                 const pipe_options& options_)
        : pipe_state(std::move(name), direction), options(options_), max_instances(max_instances_) {
        tune(options);
    }

    ~server_state() override { release_instance(listen); }

    void on_close() noexcept override {
        std::lock_guard lock(mutex);
        release_instance(listen);
    }

    std::shared_ptr<listener> current_listener() {
        std::lock_guard lock(mutex);
        return listen;
    }

    pipe_options options;
    int max_instances;
    std::string path;
    std::mutex mutex;  // guards `listen` against close() from another thread
    std::shared_ptr<listener> listen;
};

}  // namespace detail

namespace {

std::shared_ptr<detail::server_state> make_server(std::string_view name, pipe_direction direction,
                                                  int max_instances, transmission_mode mode,
                                                  const pipe_options& options) {
    auto state = std::make_shared<detail::server_state>(std::string(name), direction, max_instances,
                                                        options);
    if (mode != transmission_mode::byte && mode != transmission_mode::message)
        throw pipe_error(errc::invalid_argument, name, "create server: unknown transmission mode");
    state->transmission = mode;
    state->read_mode = mode;
    if (max_instances != max_allowed_server_instances &&
        (max_instances < 1 || max_instances > max_server_instances_limit))
        throw pipe_error(errc::invalid_argument, name,
                         "create server: max_instances must be 1..254 or "
                         "max_allowed_server_instances");
    state->path = pipe_path(name);
    std::error_code ec;
    std::string why;
    state->listen = detail::acquire_instance(state->path, max_instances, mode, options, ec, why);
    if (ec == errc::invalid_argument)
        throw pipe_error(ec, name,
                         "create server at " + state->path +
                             ": the existing instances of this name use the other transmission "
                             "mode");
    if (ec)
        throw pipe_error(ec, name,
                         "create server at " + state->path + (why.empty() ? "" : " (" + why + ")"));
    return state;
}

detail::server_state& server(const pipe_stream& s, detail::pipe_state& base) {
    (void)s;
    return static_cast<detail::server_state&>(base);
}

}  // namespace

named_pipe_server::named_pipe_server(std::string_view name, pipe_direction direction,
                                     int max_instances, pipe_options options)
    : pipe_stream(make_server(name, direction, max_instances, transmission_mode::byte, options)) {}

named_pipe_server::named_pipe_server(std::string_view name, pipe_direction direction,
                                     int max_instances, npipe::transmission_mode transmission_mode,
                                     pipe_options options)
    : pipe_stream(make_server(name, direction, max_instances, transmission_mode, options)) {}

void named_pipe_server::wait_for_connection() {
    wait_for_connection(std::chrono::milliseconds(-1));
}

void named_pipe_server::wait_for_connection(std::error_code& ec) noexcept {
    wait_for_connection(std::chrono::milliseconds(-1), ec);
}

void named_pipe_server::wait_for_connection(std::chrono::milliseconds timeout) {
    std::error_code ec;
    wait_for_connection(timeout, ec);
    detail::throw_if(ec, pipe_name(),
                     ec == errc::timed_out ? "wait for connection: no client within " +
                                                 std::to_string(timeout.count()) + " ms"
                                           : std::string("wait for connection"));
}

void named_pipe_server::wait_for_connection(std::chrono::milliseconds timeout,
                                            std::error_code& ec) noexcept {
    // Holding the state keeps it (and the listening socket) alive if another thread destroys
    // this object meanwhile: that thread's close() wakes us and we leave without touching *this.
    auto keep = shared_state();
    auto& s = server(*this, *keep);
    if (s.conn) {
        ec = errc::already_connected;
        return;
    }
    auto listen = s.current_listener();
    if (!listen) {
        ec = errc::operation_aborted;
        return;
    }
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (timeout.count() >= 0)
        deadline = std::chrono::steady_clock::now() + timeout;
    // Out of descriptors, accept fails and leaves the client queued, so the listening socket
    // stays readable: polling it again at once would spin. Pause instead, doubling up to a cap,
    // and take the client when descriptors are free again.
    constexpr auto first_pause = std::chrono::milliseconds(5);
    constexpr auto longest_pause = std::chrono::milliseconds(200);
    auto pause = first_pause;
    std::unique_ptr<detail::platform::listener::accept_wait> wait;
    try {
        wait = listen->endpoint->begin_wait();
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return;
    }
    for (;;) {
        // Serving an endpoint nobody can reach would hang every caller: say so instead. A wake
        // by the directory alone finds no client and comes back here.
        if (wait->replaced()) {
            ec = errc::name_taken_over;
            return;
        }
        if ((ec = s.wait_readable(wait->native(), deadline)))
            return;
        detail::platform::listener::accept_status status;
        auto connection = listen->endpoint->accept(s.options, status, ec);
        using accept_status = detail::platform::listener::accept_status;
        if (status == accept_status::none_queued)
            continue;  // another instance took the client, or it gave up before we got to it
        if (status == accept_status::out_of_resources) {
            auto until = std::chrono::steady_clock::now() + pause;
            if (deadline && *deadline < until)
                until = *deadline;
            if (s.sleep_until(until)) {
                ec = errc::operation_aborted;
                return;
            }
            if (deadline && std::chrono::steady_clock::now() >= *deadline) {
                ec = errc::timed_out;
                return;
            }
            pause = std::min(pause * 2, longest_pause);
            continue;
        }
        if (status == accept_status::failed)
            return;
        pause = first_pause;
        if (!detail::admit_peer(*connection, s.options))
            continue;  // refused before a byte moved; keep waiting for an allowed client
        s.attach(std::move(connection), ec);
        return;
    }
}

void named_pipe_server::disconnect() {
    auto& s = state();
    if (!s.conn)
        detail::throw_if(errc::not_connected, s.name, "disconnect");
    s.drop_connection(false);
}

void named_pipe_server::stop_listening() noexcept {
    auto& s = static_cast<detail::server_state&>(state());
    std::lock_guard lock(s.mutex);
    detail::release_instance(s.listen);
}

std::string named_pipe_server::get_impersonation_user_name() const {
    return detail::platform::user_name(get_peer_credentials());
}

const std::string& named_pipe_server::socket_path() const noexcept {
    return static_cast<const detail::server_state&>(state()).path;
}

}  // namespace npipe
