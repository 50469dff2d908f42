// npipe/rpc/async_connection.hpp: one JSON-RPC 2.0 connection over an npipe::asio pipe_stream:
// one reading loop on the pipe's executor, calls with any Asio completion token, handlers that
// are plain functions or coroutines. Part of the npipe::rpc_asio CMake target (npipe::rpc and
// npipe::asio).
//
// Inside namespace npipe, `asio::` names npipe::asio: write `::asio::` for Asio itself.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "npipe/asio/pipe_stream.hpp"
#include "npipe/rpc/connection.hpp"
#include "npipe/rpc/error.hpp"
#include "npipe/rpc/handler.hpp"

namespace npipe::rpc {

/// A handler of an async_connection in its raw form: a coroutine on the connection's strand
/// that gets the params as received and returns the result (throwing as a raw_handler does).
/// `ctx` lives until the coroutine finishes.
using async_handler = std::function<::asio::awaitable<json>(const json& params, call_context& ctx)>;

namespace detail {

template <class T>
struct awaitable_result {
    static constexpr bool is_awaitable = false;
};
template <class T, class Executor>
struct awaitable_result<::asio::awaitable<T, Executor>> {
    static constexpr bool is_awaitable = true;
    using type = T;
};

inline ::asio::awaitable<json> ready(json value) {
    co_return value;
}

// Awaits a typed coroutine handler's result as JSON; `keep` holds the callable (whose captures
// the coroutine may use) until it is done, even if the method is replaced meanwhile.
template <class T, class Keep>
::asio::awaitable<json> await_result(::asio::awaitable<T> result, std::shared_ptr<Keep> keep) {
    if constexpr (std::is_void_v<T>) {
        co_await std::move(result);
        co_return nullptr;
    } else {
        co_return json(co_await std::move(result));
    }
    (void)keep;
}

/// One completion handler, type-erased, completed on its own executor (a call, a notification
/// or a wait of the connection, kept by the connection until it completes).
template <class... Args>
struct async_completion {
    virtual ~async_completion() = default;
    /// Posts the handler, with `args`, to its associated executor.
    virtual void complete(Args... args) = 0;
};

template <class Handler, class... Args>
class async_completion_for final : public async_completion<Args...> {
  public:
    async_completion_for(Handler handler, const ::asio::any_io_executor& io)
        : slot_(::asio::get_associated_cancellation_slot(handler)),
          work_(::asio::prefer(::asio::get_associated_executor(handler, io),
                               ::asio::execution::outstanding_work.tracked)),
          handler_(std::move(handler)) {}

    void complete(Args... args) override {
        // The slot belongs to the caller's signal, on the caller's executor: cleared there, just
        // before the handler runs (the operation is then over for Asio).
        ::asio::post(work_, [slot = slot_, handler = std::move(handler_),
                             ... args = std::move(args)]() mutable {
            if (slot.is_connected())
                slot.clear();
            std::move(handler)(std::move(args)...);
        });
    }

  private:
    ::asio::cancellation_slot slot_;
    std::decay_t<decltype(::asio::prefer(
        std::declval<::asio::associated_executor_t<Handler, ::asio::any_io_executor>>(),
        ::asio::execution::outstanding_work.tracked))>
        work_;
    Handler handler_;
};

struct make_async_handler_fn;

}  // namespace detail

/// Adapts `f` to an async_handler, with make_handler's rules for the params. `f` is either a
/// plain function (run on the connection's strand: it must not block) or a coroutine returning
/// `::asio::awaitable<T>` (T converted to JSON; void answers null), which may co_await anything,
/// the connection's own calls to the peer included (ctx.async_conn().async_call(...,
/// ::asio::use_awaitable)). A coroutine takes its parameters by value. Cancelling the request
/// (the peer's `$/cancelRequest`, or the connection's end) requests stop on ctx.stop_token() and
/// emits a terminal cancellation into the coroutine: the operation it awaits completes with
/// operation_aborted, and whatever it then throws answers errc::request_cancelled.
template <class F>
async_handler make_async_handler(F f, std::vector<std::string> names = {}) {
    detail::check_names<F>(names);
    auto shared = std::make_shared<F>(std::move(f));
    return [shared, names = std::move(names)](const json& params,
                                              call_context& ctx) -> ::asio::awaitable<json> {
        using result = typename detail::callable_traits<detail::bare<F>>::result;
        if constexpr (detail::awaitable_result<result>::is_awaitable) {
            return detail::await_result(detail::apply_params(*shared, ctx, params, names), shared);
        } else if constexpr (std::is_void_v<result>) {
            detail::apply_params(*shared, ctx, params, names);
            return detail::ready(nullptr);
        } else {
            return detail::ready(json(detail::apply_params(*shared, ctx, params, names)));
        }
    };
}

namespace detail {
struct make_async_handler_fn {
    template <class F>
    async_handler operator()(F f, std::vector<std::string> names) const {
        return make_async_handler(std::move(f), std::move(names));
    }
};
}  // namespace detail

/// A JSON-RPC 2.0 connection over an npipe::asio::pipe_stream (a connected named_pipe_client or
/// an accepted pipe), which it takes over. One reading loop runs on the pipe's executor (through
/// a strand: any number of threads may run the io_context); no thread of its own.
///
/// It is a handle: copies refer to the same connection. Once started, the connection lives
/// while its reading loop runs, handles or not, until the peer closes, a frame error, or
/// close(); the calls in progress then fail with errc::connection_closed.
///
/// The options are connection_options' (framing, max_message_size, max_queued_requests: at most
/// that many received requests run at once, one more is answered errc::server_busy, and
/// reading pauses while that many answers wait to be written); handler_threads is not used.
class async_connection : public method_registry<async_handler, detail::make_async_handler_fn> {
  public:
    using executor_type = ::asio::any_io_executor;

    explicit async_connection(npipe::asio::pipe_stream stream, connection_options options = {});

    // add_method(), set_fallback(): method_registry's (handler.hpp), with make_async_handler's
    // rules: plain functions and coroutines. A synchronous raw_handler (command_handler()...)
    // goes through the two below.

    /// Registers a synchronous raw handler (it runs on the connection's strand).
    void add_raw_method(std::string method, raw_handler handler);
    /// Sets a synchronous raw handler as the fallback.
    void set_raw_fallback(raw_handler handler);

    /// The pipe's executor.
    executor_type get_executor() const noexcept;

    /// Starts the reading loop (once; handlers may be added later too).
    void start();

    /// Calls `method` with `params` (an array, an object, or null for none). Completes with
    /// (error_code, json): on success no error and the result; on failure an rpc_category()
    /// code and the error object {"code","message"[,"data"]} as the peer sent it (or as this
    /// layer made it: errc::timed_out, request_cancelled, connection_closed), which
    /// rpc_error::from_json() turns into the exception. (With ::asio::use_awaitable or
    /// use_future the error code alone is thrown, as std::system_error: wrap the token in
    /// as_tuple, ::asio::experimental::as_tuple before Asio 1.24, to keep the error object.)
    ///
    /// options.timeout and options.stop cancel the call, as does a cancellation slot bound to
    /// the token (any cancellation type): the peer is sent `$/cancelRequest` and a late answer
    /// is dropped. Any number of calls may be in progress, answered in any order.
    template <class CompletionToken>
    auto async_call(std::string_view method, json params, const call_options& options,
                    CompletionToken&& token) {
        return ::asio::async_initiate<CompletionToken, void(std::error_code, json)>(
            [impl = impl_](auto handler, std::string method, json params, call_options options) {
                using completion = detail::async_completion_for<std::decay_t<decltype(handler)>,
                                                                std::error_code, json>;
                auto slot = ::asio::get_associated_cancellation_slot(handler);
                auto io = get_executor_of(*impl);
                start_call(impl, std::move(method), std::move(params), std::move(options), slot,
                           std::make_unique<completion>(std::move(handler), io));
            },
            token, std::string(method), std::move(params), options);
    }
    template <class CompletionToken>
    auto async_call(std::string_view method, json params, CompletionToken&& token) {
        return async_call(method, std::move(params), call_options{},
                          std::forward<CompletionToken>(token));
    }

    using batch_call = connection::batch_call;
    using batch_result = connection::batch_result;

    /// Sends `calls` as one batch (one JSON array) and completes with (error_code,
    /// std::vector<batch_result>) once every call in it has its outcome: the results in the
    /// order of `calls`, each with its result or its error code and error object (a
    /// notification's slot stays empty). The error_code says why the batch as a whole ended
    /// early, if it did: an empty batch (errc::invalid_request, nothing sent), the connection's
    /// end (errc::connection_closed), options.timeout, options.stop or the token's cancellation
    /// slot (errc::timed_out, errc::request_cancelled: every call still unanswered is given up
    /// with that code, and the peer is sent `$/cancelRequest` for each).
    template <class CompletionToken>
    auto async_call_batch(std::vector<batch_call> calls, const call_options& options,
                          CompletionToken&& token) {
        return ::asio::async_initiate<CompletionToken,
                                      void(std::error_code, std::vector<batch_result>)>(
            [impl = impl_](auto handler, std::vector<batch_call> calls, call_options options) {
                using completion =
                    detail::async_completion_for<std::decay_t<decltype(handler)>, std::error_code,
                                                 std::vector<batch_result>>;
                auto slot = ::asio::get_associated_cancellation_slot(handler);
                auto io = get_executor_of(*impl);
                start_batch(impl, std::move(calls), std::move(options), slot,
                            std::make_unique<completion>(std::move(handler), io));
            },
            token, std::move(calls), options);
    }
    template <class CompletionToken>
    auto async_call_batch(std::vector<batch_call> calls, CompletionToken&& token) {
        return async_call_batch(std::move(calls), call_options{},
                                std::forward<CompletionToken>(token));
    }

    /// Sends a notification; completes with (error_code) once it is written
    /// (errc::connection_closed when the connection has ended).
    template <class CompletionToken>
    auto async_notify(std::string_view method, json params, CompletionToken&& token) {
        return ::asio::async_initiate<CompletionToken, void(std::error_code)>(
            [impl = impl_](auto handler, std::string method, json params) {
                using completion =
                    detail::async_completion_for<std::decay_t<decltype(handler)>, std::error_code>;
                auto io = get_executor_of(*impl);
                start_notify(impl, std::move(method), std::move(params),
                             std::make_unique<completion>(std::move(handler), io));
            },
            token, std::string(method), std::move(params));
    }

    /// Completes with (error_code why) once the connection has ended: close_reason().
    template <class CompletionToken>
    auto async_wait_closed(CompletionToken&& token) {
        return ::asio::async_initiate<CompletionToken, void(std::error_code)>(
            [impl = impl_](auto handler) {
                using completion =
                    detail::async_completion_for<std::decay_t<decltype(handler)>, std::error_code>;
                auto io = get_executor_of(*impl);
                start_wait_closed(impl, std::make_unique<completion>(std::move(handler), io));
            },
            token);
    }

    /// Ends the connection: closes the pipe, fails the calls in progress with
    /// errc::connection_closed and cancels running handlers. Idempotent; from any thread.
    void close() noexcept;
    /// Whether the connection is still up.
    bool is_open() const noexcept;
    /// Why the connection ended (empty while it is up): the pipe's error, errc::frame_error,
    /// or errc::connection_closed for a clean end of stream or close().
    std::error_code close_reason() const;

    struct impl;  ///< opaque

  private:
    explicit async_connection(std::shared_ptr<impl> i);  // another handle of a connection
    static executor_type get_executor_of(const impl& i) noexcept;
    static void start_call(const std::shared_ptr<impl>& i, std::string method, json params,
                           call_options options, ::asio::cancellation_slot slot,
                           std::unique_ptr<detail::async_completion<std::error_code, json>> done);
    static void start_batch(
        const std::shared_ptr<impl>& i, std::vector<batch_call> calls, call_options options,
        ::asio::cancellation_slot slot,
        std::unique_ptr<detail::async_completion<std::error_code, std::vector<batch_result>>> done);
    static void start_notify(const std::shared_ptr<impl>& i, std::string method, json params,
                             std::unique_ptr<detail::async_completion<std::error_code>> done);
    static void start_wait_closed(const std::shared_ptr<impl>& i,
                                  std::unique_ptr<detail::async_completion<std::error_code>> done);

    std::shared_ptr<impl> impl_;
};

}  // namespace npipe::rpc
