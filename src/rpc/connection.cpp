// One JSON-RPC connection: a reader thread that dispatches, handler threads, and calls waiting
// for their responses by id.
#include "npipe/rpc/connection.hpp"

#include <array>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "dispatch.hpp"
#include "npipe/errors.hpp"
#include "npipe/rpc/message.hpp"

namespace npipe::rpc {

using detail::cancel_method;
using detail::id_key;

struct connection::impl : std::enable_shared_from_this<impl> {
    struct pending_call {
        std::condition_variable_any cv;
        bool done = false;
        json result;
        std::optional<rpc_error> error;
    };
    // Received requests (one, or the requests of one batch) waiting for a handler thread.
    struct job {
        std::vector<message> messages;
        bool batch = false;
    };

    impl(pipe_stream& s, connection_options o) : stream(s), options(std::move(o)) {}

    pipe_stream& stream;
    const connection_options options;
    connection* owner = nullptr;

    std::mutex write_mutex;
    mutable std::mutex mutex;  // everything below
    std::condition_variable_any state_changed;
    std::unordered_map<std::int64_t, std::shared_ptr<pending_call>> pending;
    std::int64_t next_id = 1;
    std::map<std::string, std::stop_source> running;  // by id_key
    std::deque<job> queue;
    bool started = false;
    bool closed = false;
    std::error_code reason;
    std::string reason_text;
    std::thread reader;
    std::vector<std::thread> workers;

    // Sends one document; a failed write ends the connection (the pipe is broken).
    std::error_code send(const json& document) {
        std::string frame = detail::frame_document(options.framing, document);
        std::error_code ec;
        {
            std::lock_guard lock(write_mutex);
            stream.write(std::as_bytes(std::span(frame.data(), frame.size())), ec);
        }
        if (ec)
            end(ec, "write failed: " + ec.message());
        return ec;
    }

    rpc_error closed_error() const { return detail::closed_error(stream.pipe_name(), reason_text); }

    void end(std::error_code why, std::string text) {
        std::unique_lock lock(mutex);
        if (closed)
            return;
        closed = true;
        reason = why;
        reason_text = std::move(text);
        // First the pipe, so that a handler stopped below cannot answer on it any more: the
        // peer's calls fail as a closed connection, not with a half-done result.
        stream.close();
        for (auto& [id, call] : pending) {
            call->done = true;
            call->error = closed_error();
            call->cv.notify_all();
        }
        pending.clear();
        for (auto& [id, stop] : running)
            stop.request_stop();
        // Requests still queued can no longer be answered; notifications received before the
        // end still run (a client that notifies and leaves at once is the common case).
        for (auto& work : queue)
            std::erase_if(work.messages,
                          [](const message& m) { return m.type != message::kind::notification; });
        lock.unlock();
        state_changed.notify_all();
    }

    void read_loop() {
        frame_decoder decoder(options.framing, options.max_message_size);
        std::array<std::byte, 64 * 1024> buffer;
        for (;;) {
            std::error_code ec;
            std::size_t n = stream.read(buffer, ec);
            if (ec || n == 0) {
                auto [why, text] = detail::reading_ended(ec, decoder.buffered());
                return end(why, std::move(text));
            }
            decoder.feed(std::string_view(reinterpret_cast<const char*>(buffer.data()), n),
                         stream.is_message_complete());
            while (auto document = decoder.next(ec))
                receive(*document);
            if (ec) {
                auto [why, text] = detail::framing_broken(options.framing, decoder);
                return end(why, std::move(text));
            }
            std::lock_guard lock(mutex);
            if (closed)
                return;
        }
    }

    void receive(const std::string& text) {
        auto r = detail::sort_received(text);
        if (!detail::handle_at_once(r, *this))
            return;
        std::unique_lock lock(mutex);
        if (closed)
            return;
        if (queue.size() >= options.max_queued_requests) {
            lock.unlock();
            if (auto answer = detail::busy_answer(r.work, r.batch))
                send(*answer);
            return;
        }
        for (auto& m : r.work)
            if (m.type == message::kind::request)
                running.try_emplace(id_key(m.id));
        queue.push_back({std::move(r.work), r.batch});
        lock.unlock();
        state_changed.notify_all();
    }

    void complete(const message& m) {
        auto id = detail::call_id_of(m);
        if (!id)
            return;
        std::lock_guard lock(mutex);
        auto it = pending.find(*id);
        if (it == pending.end())
            return;  // timed out or cancelled meanwhile: dropped
        auto call = it->second;
        pending.erase(it);
        if (m.error.is_null())
            call->result = m.result;
        else
            call->error = rpc_error::from_json(m.error);
        call->done = true;
        call->cv.notify_all();
    }

    void cancel_incoming(const std::string& key) {
        std::lock_guard lock(mutex);
        auto it = running.find(key);
        if (it != running.end())
            it->second.request_stop();
    }

    void work_loop() {
        for (;;) {
            std::unique_lock lock(mutex);
            state_changed.wait(lock, [&] { return closed || !queue.empty(); });
            if (queue.empty())
                return;  // closed, and nothing left to run
            job work = std::move(queue.front());
            queue.pop_front();
            lock.unlock();
            json answers = json::array();
            for (auto& m : work.messages)
                if (auto answer = run(m))
                    answers.push_back(std::move(*answer));
            if (auto answer = detail::join_answers(std::move(answers), work.batch))
                send(*answer);
        }
    }

    // Runs one received message; the answer to send, if any.
    std::optional<json> run(message& m) {
        if (m.type == message::kind::invalid)
            return detail::invalid_answer(m);
        const bool is_request = m.type == message::kind::request;
        std::stop_token stop;
        if (is_request) {
            std::lock_guard lock(mutex);
            auto it = running.find(id_key(m.id));
            if (it != running.end())
                stop = it->second.get_token();
        }
        raw_handler handler = owner->find_method(m.method);
        std::optional<json> answer;
        call_context ctx(*owner, m.method, m.id, stop);
        try {
            if (!handler)
                detail::throw_method_not_found(m.method);
            ctx.throw_if_cancelled();
            answer = make_result(m.id, handler(m.params, ctx));
        } catch (...) {
            answer = detail::error_answer(m.id, std::current_exception(), ctx.cancelled());
        }
        if (!is_request)
            return std::nullopt;
        std::lock_guard lock(mutex);
        running.erase(id_key(m.id));
        return answer;
    }

    // Registers a call and sends its request; the caller then waits on the returned record.
    std::pair<std::int64_t, std::shared_ptr<pending_call>> begin(std::string_view method,
                                                                 const json& params) {
        auto call = std::make_shared<pending_call>();
        std::int64_t id;
        {
            std::lock_guard lock(mutex);
            if (closed)
                throw closed_error();
            id = next_id++;
            pending.emplace(id, call);
        }
        send(make_request(id, method, params));
        return {id, call};
    }

    // Waits for the answer of call `id`; on timeout or stop, forgets it and tells the peer.
    void wait(std::int64_t id, pending_call& call, const call_options& options) {
        std::unique_lock lock(mutex);
        bool done;
        if (options.timeout.count() > 0)
            done = call.cv.wait_until(lock, options.stop,
                                      std::chrono::steady_clock::now() + options.timeout,
                                      [&] { return call.done; });
        else
            done = call.cv.wait(lock, options.stop, [&] { return call.done; });
        if (done)
            return;
        pending.erase(id);
        bool was_closed = closed;
        lock.unlock();
        if (!was_closed)
            send(make_request(nullptr, cancel_method, {{"id", id}}));
        throw detail::given_up_error(options.stop.stop_requested(), options.timeout);
    }
};

connection::connection(pipe_stream& stream, connection_options options)
    : impl_(std::make_shared<impl>(stream, std::move(options))) {
    impl_->owner = this;
}

connection::~connection() {
    close();
    if (impl_->reader.joinable())
        impl_->reader.join();
    for (auto& w : impl_->workers)
        if (w.joinable())
            w.join();
}

void connection::start() {
    std::lock_guard lock(impl_->mutex);
    if (impl_->started)
        return;
    impl_->started = true;
    for (unsigned i = 0; i < std::max(1u, impl_->options.handler_threads); ++i)
        impl_->workers.emplace_back([p = impl_.get()] { p->work_loop(); });
    impl_->reader = std::thread([p = impl_.get()] { p->read_loop(); });
}

json connection::call(std::string_view method, json params, const call_options& options) {
    auto [id, call] = impl_->begin(method, params);
    impl_->wait(id, *call, options);
    if (call->error)
        throw *call->error;
    return std::move(call->result);
}

json connection::call(std::string_view method, json params, const call_options& options,
                      std::error_code& ec, rpc_error* error) {
    ec.clear();
    try {
        return call(method, std::move(params), options);
    } catch (const rpc_error& e) {
        ec = e.error_code();
        if (error)
            *error = e;
    }
    return nullptr;
}

void connection::notify(std::string_view method, json params) {
    std::error_code ec;
    notify(method, std::move(params), ec);
    if (ec)
        throw impl_->closed_error();
}

void connection::notify(std::string_view method, json params, std::error_code& ec) noexcept {
    ec.clear();
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->closed) {
            ec = errc::connection_closed;
            return;
        }
    }
    try {
        if (impl_->send(make_request(nullptr, method, params)))
            ec = errc::connection_closed;
    } catch (const std::exception&) {
        ec = errc::internal_error;
    }
}

std::vector<connection::batch_result> connection::call_batch(const std::vector<batch_call>& calls,
                                                             const call_options& options) {
    std::vector<batch_result> results(calls.size());
    if (calls.empty())
        return results;
    std::vector<std::pair<std::int64_t, std::shared_ptr<impl::pending_call>>> waits;
    json batch = json::array();
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->closed)
            throw impl_->closed_error();
        for (const auto& c : calls) {
            if (c.notification) {
                batch.push_back(make_request(nullptr, c.method, c.params));
                waits.emplace_back(0, nullptr);
                continue;
            }
            auto call = std::make_shared<impl::pending_call>();
            std::int64_t id = impl_->next_id++;
            impl_->pending.emplace(id, call);
            batch.push_back(make_request(id, c.method, c.params));
            waits.emplace_back(id, call);
        }
    }
    impl_->send(batch);
    // One deadline for the whole batch: each wait gets what is left of it.
    auto deadline = std::chrono::steady_clock::now() + options.timeout;
    for (std::size_t i = 0; i < calls.size(); ++i) {
        auto& [id, call] = waits[i];
        if (!call)
            continue;
        call_options left = options;
        if (options.timeout.count() > 0)
            left.timeout = std::max(std::chrono::milliseconds(1),
                                    std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - std::chrono::steady_clock::now()));
        try {
            impl_->wait(id, *call, left);
        } catch (...) {
            // Forget the other calls of the batch too, so their late answers are dropped.
            std::lock_guard lock(impl_->mutex);
            for (auto& [other, c] : waits)
                if (c)
                    impl_->pending.erase(other);
            throw;
        }
        if (call->error) {
            results[i].ec = call->error->error_code();
            results[i].error = call->error->to_json();
        } else {
            results[i].result = std::move(call->result);
        }
    }
    return results;
}

void connection::close() noexcept {
    impl_->end(errc::connection_closed, "closed by this end");
}

void connection::wait() {
    std::unique_lock lock(impl_->mutex);
    impl_->state_changed.wait(lock, [&] { return impl_->closed; });
}

bool connection::is_open() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return !impl_->closed;
}

std::error_code connection::close_reason() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->reason;
}

}  // namespace npipe::rpc
