// npipe/asio/timeout.hpp: a deadline for any asynchronous operation.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <system_error>
#include <utility>

#include "npipe/errors.hpp"

namespace npipe::asio {

namespace detail {

template <class Operation, class... Args>
struct timeout_op {
    Operation operation;
    ::asio::any_io_executor ex;
    std::chrono::steady_clock::duration timeout;
    std::unique_ptr<::asio::steady_timer> timer{};

    template <class Self>
    void operator()(Self& self) {
        self.reset_cancellation_state(::asio::enable_total_cancellation());
        timer = std::make_unique<::asio::steady_timer>(ex, timeout);
        ::asio::experimental::make_parallel_group(std::move(operation), [t = timer.get()](
                                                                            auto token) {
            return t->async_wait(std::move(token));
        }).async_wait(::asio::experimental::wait_for_one(), std::move(self));
    }

    template <class Self>
    void operator()(Self& self, std::array<std::size_t, 2> order, std::error_code ec, Args... args,
                    std::error_code timer_ec) {
        // Only a timer that really expired first turns the operation's abort into a timeout;
        // an operation that completed anyway keeps its result.
        if (order[0] == 1 && !timer_ec && ec == ::asio::error::operation_aborted)
            ec = npipe::errc::timed_out;
        self.complete(ec, std::move(args)...);
    }
};

/// A completion token that starts nothing and only reports the completion signature an
/// operation would complete with (Asio's own parallel_group uses the same trick internally).
struct signature_probe {};
template <class Signature>
struct signature_probe_result {
    using type = Signature;
};

template <class Operation>
using operation_signature = typename decltype(std::declval<Operation&>()(signature_probe{}))::type;

template <class Signature>
struct timeout_launcher;

template <class R, class... Args>
struct timeout_launcher<R(std::error_code, Args...)> {
    template <class Operation, class CompletionToken>
    static auto launch(const ::asio::any_io_executor& ex, std::chrono::steady_clock::duration d,
                       Operation&& operation, CompletionToken& token) {
        return ::asio::async_compose<CompletionToken, void(std::error_code, Args...)>(
            timeout_op<std::decay_t<Operation>, std::decay_t<Args>...>{
                std::forward<Operation>(operation), ex, d, nullptr},
            token, ex);
    }
};

}  // namespace detail

/// Runs an asynchronous operation with a deadline. `operation` starts it when called with a
/// completion token, e.g. `[&](auto token) { return pipe.async_read_some(buf, token); }`; its
/// completion signature must begin with std::error_code. If it has not completed within
/// `timeout`, it is cancelled (cancellation_type::all) and completes with npipe::errc::timed_out
/// in place of operation_aborted; one that completes anyway (a race) keeps its result. The
/// pipe stays usable after a timed-out read, accept or connect; for message reads and writes
/// see the cancellation rules of pipe_stream. Cancelling the whole operation through its own
/// slot cancels both the operation and the timer (operation_aborted).
template <class Operation, class CompletionToken>
auto async_with_timeout(const ::asio::any_io_executor& ex,
                        std::chrono::steady_clock::duration timeout, Operation&& operation,
                        CompletionToken&& token) {
    using signature =
        typename ::asio::experimental::detail::parallel_op_signature<std::decay_t<Operation>>::type;
    return detail::timeout_launcher<signature>::launch(ex, timeout,
                                                       std::forward<Operation>(operation), token);
}

}  // namespace npipe::asio

template <class R, class... Args>
class asio::async_result<npipe::asio::detail::signature_probe, R(Args...)> {
  public:
    using return_type = npipe::asio::detail::signature_probe_result<void(Args...)>;

    template <class Initiation, class... InitArgs>
    static return_type initiate(Initiation&&, npipe::asio::detail::signature_probe, InitArgs&&...) {
        return {};
    }
};
