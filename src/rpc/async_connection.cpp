// One asynchronous JSON-RPC connection: a reading loop and a queue of writes on a strand of the
// pipe's executor, calls waiting by id, handlers as coroutines (co_spawn) on the same strand.
#include "npipe/rpc/async_connection.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <unordered_map>

#include "dispatch.hpp"
#include "npipe/rpc/message.hpp"

namespace npipe::rpc {

namespace {
using call_done = detail::async_completion<std::error_code, json>;
using done = detail::async_completion<std::error_code>;
using batch_done =
    detail::async_completion<std::error_code, std::vector<async_connection::batch_result>>;
}  // namespace

struct async_connection::impl : std::enable_shared_from_this<impl> {
    struct pending_call {
        std::unique_ptr<call_done> done;
        std::chrono::milliseconds timeout{0};
        std::unique_ptr<::asio::steady_timer> timer;
        std::unique_ptr<std::stop_callback<std::function<void()>>> stop;
    };
    struct outgoing {
        std::string frame;
        std::unique_ptr<done> written;
    };
    // A received request or notification while its handler runs; the context refers to it.
    struct running_request {
        running_request(async_connection conn, std::string m, json i)
            : handle(std::move(conn)),
              method(std::move(m)),
              id(std::move(i)),
              ctx(handle, method, id, stop.get_token()) {}
        async_connection handle;  // what ctx.async_conn() gives the handler
        std::string method;
        json id;
        std::stop_source stop;
        ::asio::cancellation_signal signal;
        call_context ctx;
    };
    // The answers to one received document (a batch is answered once, as one array).
    struct answers {
        json documents = json::array();
        std::size_t left = 0;
        bool batch = false;
    };

    impl(npipe::asio::pipe_stream s, connection_options o,
         std::shared_ptr<detail::method_table<async_handler>> t)
        : io(s.get_executor()),
          stream(std::move(s)),
          strand(::asio::make_strand(io)),
          options(o),
          table(std::move(t)),
          pipe_name(stream.pipe_name()),
          decoder(o.framing, o.max_message_size) {}
    // The last reference to a connection that never ended (never started, or its reading loop
    // never ran): what waits on it fails rather than never completes.
    ~impl() { end(errc::connection_closed, "no handle of it is left"); }

    const ::asio::any_io_executor io;
    npipe::asio::pipe_stream stream;
    ::asio::strand<::asio::any_io_executor> strand;
    const connection_options options;
    const std::shared_ptr<detail::method_table<async_handler>> table;
    const std::string pipe_name;
    std::atomic<std::int64_t> next_id{1};
    std::atomic<bool> open{true};
    mutable std::mutex reason_mutex;  // reason, read from any thread
    std::error_code reason;

    // On the strand only:
    frame_decoder decoder;
    std::array<std::byte, 64 * 1024> buffer;
    std::string reason_text;
    bool started = false, closed = false, writing = false, read_paused = false;
    std::unordered_map<std::int64_t, pending_call> pending;
    std::deque<outgoing> writes;
    std::unordered_map<std::string, std::shared_ptr<running_request>> running;  // by id_key
    std::size_t active = 0;  // handlers running, requests and notifications
    std::vector<std::unique_ptr<done>> close_waiters;

    rpc_error closed_error() const { return detail::closed_error(pipe_name, reason_text); }

    template <class F>
    void on_strand(F f) {
        ::asio::post(strand, [self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
    }

    // Reading.
    void start() {
        if (started || closed)
            return;
        started = true;
        try {
            if (options.framing == framing::message &&
                stream.transmission_mode() == transmission_mode::message)
                stream.set_read_mode(transmission_mode::message);
        } catch (const std::system_error& e) {
            return end(e.code(), e.what());
        }
        read_some();
    }

    void read_some() {
        stream.async_read_some(
            ::asio::buffer(buffer),
            ::asio::bind_executor(strand,
                                  [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                      self->on_read(ec, n);
                                  }));
    }

    void on_read(std::error_code ec, std::size_t n) {
        if (closed)
            return;
        if (ec) {
            auto [why, text] = detail::reading_ended(
                ec == ::asio::error::eof ? std::error_code() : ec, decoder.buffered());
            return end(why, std::move(text));
        }
        decoder.feed(std::string_view(reinterpret_cast<const char*>(buffer.data()), n),
                     stream.is_message_complete());
        while (auto document = decoder.next(ec)) {
            receive(*document);
            if (closed)
                return;
        }
        if (ec) {
            auto [why, text] = detail::framing_broken(options.framing, decoder);
            return end(why, std::move(text));
        }
        // Backpressure: a peer that sends requests and does not read their answers stops
        // being read until they are written.
        if (writes.size() >= options.max_queued_requests)
            read_paused = true;
        else
            read_some();
    }

    void receive(const std::string& text) {
        auto r = detail::sort_received(text);
        if (!detail::handle_at_once(r, *this))
            return;
        if (active + r.work.size() > options.max_queued_requests) {
            if (auto answer = detail::busy_answer(r.work, r.batch))
                send(*answer);
            return;
        }
        auto batch = std::make_shared<answers>();
        batch->left = r.work.size();
        batch->batch = r.batch;
        for (auto& m : r.work)
            run(std::move(m), batch);
    }

    void add_answer(answers& batch, std::optional<json> answer) {
        if (answer)
            batch.documents.push_back(std::move(*answer));
        if (--batch.left == 0)
            if (auto document = detail::join_answers(std::move(batch.documents), batch.batch))
                send(*document);
    }

    static ::asio::awaitable<json> invoke(async_handler handler,
                                          std::shared_ptr<running_request> request, json params) {
        try {
            if (!handler)
                detail::throw_method_not_found(request->method);
            request->ctx.throw_if_cancelled();
            json result = co_await handler(params, request->ctx);
            co_return make_result(request->id, std::move(result));
        } catch (...) {
            co_return detail::error_answer(request->id, std::current_exception(),
                                           request->ctx.cancelled());
        }
    }

    void run(message m, std::shared_ptr<answers> batch) {
        if (m.type == message::kind::invalid)
            return add_answer(*batch, detail::invalid_answer(m));
        const bool is_request = m.type == message::kind::request;
        auto request = std::make_shared<running_request>(async_connection(shared_from_this()),
                                                         std::move(m.method), std::move(m.id));
        std::string key = is_request ? detail::id_key(request->id) : std::string();
        if (is_request)
            running[key] = request;
        ++active;
        auto handler = find_method(*table, request->method);
        ::asio::co_spawn(
            strand, invoke(std::move(handler), request, std::move(m.params)),
            ::asio::bind_cancellation_slot(
                request->signal.slot(),
                ::asio::bind_executor(strand, [self = shared_from_this(), request, batch, key,
                                               is_request](std::exception_ptr, json answer) {
                    --self->active;
                    if (is_request) {
                        auto it = self->running.find(key);
                        if (it != self->running.end() && it->second == request)
                            self->running.erase(it);
                    }
                    self->add_answer(*batch,
                                     is_request ? std::optional(std::move(answer)) : std::nullopt);
                })));
    }

    void cancel_incoming(const std::string& key) {
        auto it = running.find(key);
        if (it == running.end())
            return;
        it->second->stop.request_stop();
        it->second->signal.emit(::asio::cancellation_type::terminal);
    }

    // Our calls.
    void begin_call(std::int64_t id, const std::string& method, const json& params,
                    const call_options& o, std::unique_ptr<call_done> done) {
        if (closed) {
            auto e = closed_error();
            return done->complete(e.error_code(), e.to_json());
        }
        auto& call = pending[id];
        call.done = std::move(done);
        call.timeout = o.timeout;
        std::weak_ptr<impl> weak = weak_from_this();
        if (o.timeout.count() > 0) {
            call.timer = std::make_unique<::asio::steady_timer>(strand, o.timeout);
            call.timer->async_wait([weak, id](std::error_code ec) {
                if (auto self = weak.lock(); self && !ec)
                    self->give_up(id, false);
            });
        }
        if (o.stop.stop_possible())
            call.stop = std::make_unique<std::stop_callback<std::function<void()>>>(
                o.stop, std::function<void()>([weak, id] {
                    if (auto self = weak.lock())
                        self->on_strand([id](impl& i) { i.give_up(id, true); });
                }));
        send(make_request(id, method, params));
    }

    // A batch of our calls: each call's completion fills its slot; the last one (or the
    // batch's timeout, cancellation or the connection's end) completes the batch.
    struct batch_state {
        std::vector<batch_result> results;
        std::vector<std::int64_t> ids;  // of the calls still unanswered
        std::unique_ptr<batch_done> done;
        std::unique_ptr<::asio::steady_timer> timer;
        std::unique_ptr<std::stop_callback<std::function<void()>>> stop;

        std::error_code reason;  // why the batch as a whole ended early, if it did

        void answered(std::int64_t id, std::size_t slot, std::error_code ec, json value) {
            auto& r = results[slot];
            if (ec) {
                r.ec = ec;
                r.error = std::move(value);
                if (ec == errc::connection_closed && !reason)
                    reason = ec;
            } else {
                r.result = std::move(value);
            }
            std::erase(ids, id);
            if (ids.empty() && done) {
                stop.reset();
                if (timer)
                    timer->cancel();
                std::exchange(done, nullptr)->complete(reason, std::move(results));
            }
        }
    };
    // The completion a batch's call leaves in `pending`: it answers into the batch's state.
    struct batch_slot final : call_done {
        batch_slot(std::shared_ptr<batch_state> b, std::int64_t i, std::size_t s)
            : batch(std::move(b)), id(i), slot(s) {}
        void complete(std::error_code ec, json value) override {
            batch->answered(id, slot, ec, std::move(value));
        }
        std::shared_ptr<batch_state> batch;
        std::int64_t id;
        std::size_t slot;
    };

    void begin_batch(std::vector<batch_call> calls, const call_options& o,
                     std::shared_ptr<batch_state> batch) {
        if (closed) {
            auto e = closed_error();
            return std::exchange(batch->done, nullptr)
                ->complete(e.error_code(), std::move(batch->results));
        }
        json document = json::array();
        std::vector<std::int64_t> ids;
        for (std::size_t k = 0; k < calls.size(); ++k) {
            if (calls[k].notification) {
                document.push_back(make_request(nullptr, calls[k].method, calls[k].params));
                continue;
            }
            const std::int64_t id = next_id++;
            document.push_back(make_request(id, calls[k].method, calls[k].params));
            pending[id].done = std::make_unique<batch_slot>(batch, id, k);
            pending[id].timeout = o.timeout;
            ids.push_back(id);
        }
        batch->ids = ids;
        std::weak_ptr<impl> weak = weak_from_this();
        if (o.timeout.count() > 0) {
            batch->timer = std::make_unique<::asio::steady_timer>(strand, o.timeout);
            batch->timer->async_wait([weak, batch](std::error_code ec) {
                if (auto self = weak.lock(); self && !ec)
                    self->give_up_batch(*batch, false);
            });
        }
        if (o.stop.stop_possible())
            batch->stop = std::make_unique<std::stop_callback<std::function<void()>>>(
                o.stop, std::function<void()>([weak, batch] {
                    if (auto self = weak.lock())
                        self->on_strand([batch](impl& i) { i.give_up_batch(*batch, true); });
                }));
        send(document);
        if (ids.empty())  // notifications only: answered by nobody, done once sent
            std::exchange(batch->done, nullptr)->complete({}, std::move(batch->results));
    }

    void give_up_batch(batch_state& batch, bool cancelled) {
        if (!batch.reason)
            batch.reason = cancelled ? errc::request_cancelled : errc::timed_out;
        for (auto id : std::vector<std::int64_t>(batch.ids))
            give_up(id, cancelled);
    }

    void complete(const message& m) {
        auto id = detail::call_id_of(m);
        if (!id)
            return;
        if (m.error.is_null())
            return finish(*id, {}, m.result);
        auto e = rpc_error::from_json(m.error);
        finish(*id, e.error_code(), e.to_json());
    }

    void finish(std::int64_t id, std::error_code ec, json value) {
        auto it = pending.find(id);
        if (it == pending.end())
            return;  // given up meanwhile: a late answer is dropped
        auto call = std::move(it->second);
        pending.erase(it);
        call.stop.reset();
        call.done->complete(ec, std::move(value));
    }

    // Cancelled (stop token, cancellation slot) or timed out: tell the peer, fail the call.
    void give_up(std::int64_t id, bool cancelled) {
        auto it = pending.find(id);
        if (it == pending.end())
            return;
        auto e = detail::given_up_error(cancelled, it->second.timeout);
        send(make_request(nullptr, detail::cancel_method, {{"id", id}}));
        finish(id, e.error_code(), e.to_json());
    }

    // Writing.
    void send(const json& document, std::unique_ptr<done> written = nullptr) {
        if (closed) {
            if (written)
                written->complete(errc::connection_closed);
            return;
        }
        writes.push_back({detail::frame_document(options.framing, document), std::move(written)});
        if (!writing)
            write_next();
    }

    void write_next() {
        writing = true;
        auto on_written = ::asio::bind_executor(
            strand,
            [self = shared_from_this()](std::error_code ec, std::size_t) { self->written(ec); });
        const std::string& frame = writes.front().frame;
        if (options.framing == framing::message)
            stream.async_write_message(::asio::buffer(frame), std::move(on_written));
        else
            ::asio::async_write(stream, ::asio::buffer(frame), std::move(on_written));
    }

    void written(std::error_code ec) {
        writing = false;
        auto done = std::move(writes.front().written);
        writes.pop_front();
        if (ec && !closed)
            end(ec, "write failed: " + ec.message());
        if (done)  // a write that failed because the connection ended: that is the reason
            done->complete(ec && closed ? std::error_code(errc::connection_closed) : ec);
        if (closed)
            return drop_writes();
        if (!writes.empty())
            write_next();
        if (read_paused && writes.size() < options.max_queued_requests) {
            read_paused = false;
            read_some();
        }
    }

    void drop_writes() {
        if (writing)
            return;  // its buffer stays until its completion, which drops the rest
        for (auto& w : writes)
            if (w.written)
                w.written->complete(errc::connection_closed);
        writes.clear();
    }

    // The end.
    void end(std::error_code why, std::string text) {
        if (closed)
            return;
        closed = true;
        reason_text = std::move(text);
        {
            std::lock_guard lock(reason_mutex);
            reason = why;
        }
        open = false;
        stream.close();
        auto e = closed_error();
        auto calls = std::move(pending);
        pending.clear();
        for (auto& [id, call] : calls) {
            call.stop.reset();
            call.done->complete(e.error_code(), e.to_json());
        }
        std::vector<std::shared_ptr<running_request>> requests;
        for (auto& [key, request] : running)
            requests.push_back(request);
        for (auto& request : requests) {
            request->stop.request_stop();
            request->signal.emit(::asio::cancellation_type::terminal);
        }
        drop_writes();
        for (auto& waiter : close_waiters)
            waiter->complete(why);
        close_waiters.clear();
    }
};

async_connection::async_connection(npipe::asio::pipe_stream stream, connection_options options)
    : impl_(std::make_shared<impl>(std::move(stream), options, table_)) {}

async_connection::async_connection(std::shared_ptr<impl> i) : impl_(std::move(i)) {
    table_ = impl_->table;
}

void async_connection::add_raw_method(std::string method, raw_handler handler) {
    add_method(std::move(method), [h = std::move(handler)](const json& params, call_context& ctx) {
        return detail::ready(h(params, ctx));
    });
}

void async_connection::set_raw_fallback(raw_handler handler) {
    set_fallback([h = std::move(handler)](const json& params, call_context& ctx) {
        return detail::ready(h(params, ctx));
    });
}

async_connection::executor_type async_connection::get_executor() const noexcept {
    return impl_->io;
}

async_connection::executor_type async_connection::get_executor_of(const impl& i) noexcept {
    return i.io;
}

void async_connection::start() {
    impl_->on_strand([](impl& i) { i.start(); });
}

void async_connection::start_call(const std::shared_ptr<impl>& i, std::string method, json params,
                                  call_options options, ::asio::cancellation_slot slot,
                                  std::unique_ptr<call_done> done) {
    const std::int64_t id = i->next_id++;
    // The slot is the caller's, on the caller's executor: assigned here, in the initiation.
    if (slot.is_connected())
        slot.assign([weak = std::weak_ptr<impl>(i), id](::asio::cancellation_type) {
            if (auto self = weak.lock())
                self->on_strand([id](impl& s) { s.give_up(id, true); });
        });
    i->on_strand([id, method = std::move(method), params = std::move(params),
                  options = std::move(options), done = std::move(done)](impl& s) mutable {
        s.begin_call(id, method, params, options, std::move(done));
    });
}

void async_connection::start_batch(const std::shared_ptr<impl>& i, std::vector<batch_call> calls,
                                   call_options options, ::asio::cancellation_slot slot,
                                   std::unique_ptr<batch_done> done) {
    auto batch = std::make_shared<impl::batch_state>();
    batch->results.resize(calls.size());
    if (calls.empty()) {
        auto e = rpc_error(errc::invalid_request, "an empty batch");
        return done->complete(e.error_code(), std::move(batch->results));
    }
    batch->done = std::move(done);
    if (slot.is_connected())
        slot.assign([weak = std::weak_ptr<impl>(i), batch](::asio::cancellation_type) {
            if (auto self = weak.lock())
                self->on_strand([batch](impl& s) { s.give_up_batch(*batch, true); });
        });
    i->on_strand([calls = std::move(calls), options = std::move(options), batch](impl& s) mutable {
        s.begin_batch(std::move(calls), options, batch);
    });
}

void async_connection::start_notify(const std::shared_ptr<impl>& i, std::string method, json params,
                                    std::unique_ptr<done> written) {
    i->on_strand([method = std::move(method), params = std::move(params),
                  written = std::move(written)](impl& s) mutable {
        s.send(make_request(nullptr, method, params), std::move(written));
    });
}

void async_connection::start_wait_closed(const std::shared_ptr<impl>& i,
                                         std::unique_ptr<done> waiter) {
    i->on_strand([waiter = std::move(waiter)](impl& s) mutable {
        if (s.closed)
            return waiter->complete(s.reason);
        s.close_waiters.push_back(std::move(waiter));
    });
}

void async_connection::close() noexcept {
    try {
        impl_->on_strand([](impl& i) { i.end(errc::connection_closed, "closed by this end"); });
    } catch (...) {
        // Posting allocates; without memory the connection ends with the pipe's owner anyway.
    }
}

bool async_connection::is_open() const noexcept {
    return impl_->open;
}

std::error_code async_connection::close_reason() const {
    std::lock_guard lock(impl_->reason_mutex);
    return impl_->reason;
}

}  // namespace npipe::rpc
