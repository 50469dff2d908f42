// npipe/rpc/handler.hpp: typed handlers: a C++ callable whose parameters and result are
// converted from and to JSON (with nlohmann::json's conversions, so any type that has
// to_json/from_json), with errc::invalid_params when the params do not fit.
#pragma once
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>
#include "npipe/rpc/error.hpp"

namespace npipe::rpc {

class connection;

/// What a handler knows about the request it runs for.
class call_context {
  public:
    call_context(connection& conn, const std::string& method, const json& id,
                 std::stop_token stop) noexcept
        : conn_(conn), method_(method), id_(id), stop_(std::move(stop)) {}
    /// The method called.
    const std::string& method() const noexcept { return method_; }
    /// The request's id (null for a notification).
    const json& id() const noexcept { return id_; }
    /// Stop is requested when the peer sends `$/cancelRequest` for this request or the
    /// connection ends: long handlers poll it, or wait on it with std::stop_callback.
    const std::stop_token& stop_token() const noexcept { return stop_; }
    bool cancelled() const noexcept { return stop_.stop_requested(); }
    /// Throws rpc_error(errc::request_cancelled), which the peer receives as its cancellation
    /// (StreamJsonRpc turns it into an OperationCanceledException), when cancelled.
    void throw_if_cancelled() const {
        if (cancelled())
            throw rpc_error(errc::request_cancelled, "Request cancelled");
    }
    /// The connection the request came on: a handler may call the peer back through it.
    connection& conn() const noexcept { return conn_; }

  private:
    connection& conn_;
    const std::string& method_;
    const json& id_;
    std::stop_token stop_;
};

/// A handler in its raw form: the params as received (array, object or null), returning the
/// result. Throwing rpc_error answers with that error; any other exception with
/// errc::internal_error and its what().
using raw_handler = std::function<json(const json& params, call_context& ctx)>;

namespace detail {

template <class F>
struct callable_traits : callable_traits<decltype(&F::operator())> {};
template <class R, class... A>
struct callable_traits<R (*)(A...)> {
    using result = R;
    using args = std::tuple<A...>;
};
template <class R, class... A>
struct callable_traits<R(A...)> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...)> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) noexcept> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const noexcept> : callable_traits<R (*)(A...)> {};

template <class T>
using bare = std::remove_cvref_t<T>;

template <class Tuple>
struct takes_context : std::false_type {};
template <class First, class... Rest>
struct takes_context<std::tuple<First, Rest...>> : std::is_same<bare<First>, call_context> {};

template <class Tuple>
struct drop_first {
    using type = std::tuple<>;
};
template <class First, class... Rest>
struct drop_first<std::tuple<First, Rest...>> {
    using type = std::tuple<bare<Rest>...>;
};
template <class... A>
struct decay_all {
    using type = std::tuple<bare<A>...>;
};
template <class Tuple>
struct decay_tuple;
template <class... A>
struct decay_tuple<std::tuple<A...>> : decay_all<A...> {};

template <class Tuple>
struct is_raw_json : std::false_type {};
template <>
struct is_raw_json<std::tuple<json>> : std::true_type {};

// The parameters a handler takes from the params (those after an optional call_context&).
template <class F>
struct handler_args {
    using all = typename decay_tuple<typename callable_traits<bare<F>>::args>::type;
    using type = std::conditional_t<takes_context<typename callable_traits<bare<F>>::args>::value,
                                    typename drop_first<all>::type, all>;
    static constexpr std::size_t arity = std::tuple_size_v<type>;
};

[[noreturn]] void throw_invalid_params(const std::string& why);

/// The value of parameter `i` (named `name` if names were given) out of params.
template <class T>
T param_at(const json& params, std::size_t i, const std::vector<std::string>& names) {
    const json* value = nullptr;
    std::string label;
    if (params.is_object()) {
        label = "'" + names[i] + "'";
        auto it = params.find(names[i]);
        if (it == params.end())
            throw_invalid_params("missing parameter " + label);
        value = &*it;
    } else {
        label = std::to_string(i);
        value = &params[i];
    }
    try {
        return value->get<T>();
    } catch (const json::exception& e) {
        throw_invalid_params("parameter " + label + ": " + e.what());
    }
}

template <class Args, class F, std::size_t... I>
decltype(auto) invoke_with(F& f, call_context* ctx, const json& params,
                           const std::vector<std::string>& names, std::index_sequence<I...>) {
    if constexpr (takes_context<typename callable_traits<F>::args>::value)
        return f(*ctx, param_at<std::tuple_element_t<I, Args>>(params, I, names)...);
    else
        return f(param_at<std::tuple_element_t<I, Args>>(params, I, names)...);
}

}  // namespace detail

/// Adapts `f` to a raw_handler. `f` may take a `call_context&` first; its other parameters are
/// converted from the params: by position from an array (the count must match), by name from
/// an object when `names` names them in order. A function of one parameter given an object
/// without names receives the whole object converted (a struct with from_json), and one
/// taking `const json&` receives the params as they are. Its result is converted to JSON (void
/// answers null). Throws std::invalid_argument when `names` has the wrong count.
template <class F>
raw_handler make_handler(F f, std::vector<std::string> names = {}) {
    using traits = detail::callable_traits<detail::bare<F>>;
    using args = typename detail::handler_args<F>::type;
    constexpr std::size_t arity = detail::handler_args<F>::arity;
    if (!names.empty() && names.size() != arity)
        throw std::invalid_argument("npipe::rpc::make_handler: " + std::to_string(names.size()) +
                                    " parameter names for a function of " + std::to_string(arity) +
                                    " parameters");
    return [f = std::move(f), names = std::move(names)](const json& params,
                                                        call_context& ctx) mutable -> json {
        constexpr std::size_t arity = detail::handler_args<F>::arity;
        auto call = [&](const json& p, const std::vector<std::string>& n) -> json {
            if constexpr (std::is_void_v<typename traits::result>) {
                detail::invoke_with<args>(f, &ctx, p, n, std::make_index_sequence<arity>{});
                return nullptr;
            } else {
                return json(
                    detail::invoke_with<args>(f, &ctx, p, n, std::make_index_sequence<arity>{}));
            }
        };
        if constexpr (detail::is_raw_json<args>::value) {
            if (names.empty())
                return call(json::array({params}), names);
        }
        if (params.is_null()) {
            if (arity != 0)
                detail::throw_invalid_params("expected " + std::to_string(arity) +
                                             " parameters, got none");
            return call(json::array(), names);
        }
        if (params.is_array()) {
            if (params.size() != arity)
                detail::throw_invalid_params("expected " + std::to_string(arity) +
                                             " parameters, got " + std::to_string(params.size()));
            return call(params, names);
        }
        if (params.is_object()) {
            if (!names.empty())
                return call(params, names);
            if constexpr (arity == 0)
                return call(json::array(), names);
            if constexpr (arity == 1)
                return call(json::array({params}), names);
            detail::throw_invalid_params(
                "parameters by name, but the method takes them by position only");
        }
        detail::throw_invalid_params("params must be an array or an object");
    };
}

}  // namespace npipe::rpc
