// npipe/rpc/handler.hpp: typed handlers: a C++ callable whose parameters and result are
// converted from and to JSON (with nlohmann::json's conversions, so any type that has
// to_json/from_json), with errc::invalid_params when the params do not fit.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>
#include "npipe/rpc/error.hpp"

namespace npipe::rpc {

class connection;
class async_connection;

/// What a handler knows about the request it runs for (on a connection or an
/// async_connection; the same handlers serve both).
class call_context {
  public:
    call_context(connection& conn, const std::string& method, const json& id,
                 std::stop_token stop) noexcept
        : conn_(&conn), method_(method), id_(id), stop_(std::move(stop)) {}
    call_context(async_connection& conn, const std::string& method, const json& id,
                 std::stop_token stop) noexcept
        : async_conn_(&conn), method_(method), id_(id), stop_(std::move(stop)) {}
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
    /// Throws std::logic_error in a handler of an async_connection (use async_conn()).
    connection& conn() const {
        if (!conn_)
            throw std::logic_error(
                "npipe::rpc::call_context::conn(): an async_connection's "
                "handler (use async_conn())");
        return *conn_;
    }
    /// The async_connection the request came on (a coroutine handler co_awaits its calls back
    /// to the peer). Throws std::logic_error in a handler of a (synchronous) connection.
    async_connection& async_conn() const {
        if (!async_conn_)
            throw std::logic_error(
                "npipe::rpc::call_context::async_conn(): a synchronous "
                "connection's handler (use conn())");
        return *async_conn_;
    }

  private:
    connection* conn_ = nullptr;
    async_connection* async_conn_ = nullptr;
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

namespace detail {

/// Checks `names` against the parameters `F` takes (std::invalid_argument when they differ).
template <class F>
void check_names(const std::vector<std::string>& names) {
    constexpr std::size_t arity = handler_args<F>::arity;
    if (!names.empty() && names.size() != arity)
        throw std::invalid_argument("npipe::rpc::make_handler: " + std::to_string(names.size()) +
                                    " parameter names for a function of " + std::to_string(arity) +
                                    " parameters");
}

/// Calls `f` with its parameters converted from `params` (the rules of make_handler) and
/// returns what it returns, as is: make_handler converts it to JSON, the async layer awaits it
/// first when it is a coroutine.
template <class F>
decltype(auto) apply_params(F& f, call_context& ctx, const json& params,
                            const std::vector<std::string>& names) {
    using args = typename handler_args<F>::type;
    constexpr std::size_t arity = handler_args<F>::arity;
    auto call = [&](const json& p) -> decltype(auto) {
        return invoke_with<args>(f, &ctx, p, names, std::make_index_sequence<arity>{});
    };
    if constexpr (is_raw_json<args>::value) {
        if (names.empty())
            return call(json::array({params}));
    }
    if (params.is_null()) {
        if (arity != 0)
            throw_invalid_params("expected " + std::to_string(arity) + " parameters, got none");
        return call(json::array());
    }
    if (params.is_array()) {
        if (params.size() != arity)
            throw_invalid_params("expected " + std::to_string(arity) + " parameters, got " +
                                 std::to_string(params.size()));
        return call(params);
    }
    if (params.is_object()) {
        if (!names.empty())
            return call(params);
        if constexpr (arity == 0)
            return call(json::array());
        if constexpr (arity == 1)
            return call(json::array({params}));
        throw_invalid_params("parameters by name, but the method takes them by position only");
    }
    throw_invalid_params("params must be an array or an object");
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
    detail::check_names<F>(names);
    return [f = std::move(f), names = std::move(names)](const json& params,
                                                        call_context& ctx) mutable -> json {
        using result = typename detail::callable_traits<detail::bare<F>>::result;
        if constexpr (std::is_void_v<result>) {
            detail::apply_params(f, ctx, params, names);
            return nullptr;
        } else {
            return json(detail::apply_params(f, ctx, params, names));
        }
    };
}

namespace detail {
/// The handlers of one connection, safe to change while requests run.
template <class Handler>
struct method_table {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Handler> methods;
    Handler fallback;
};
}  // namespace detail

/// The method registration of a connection (`Handler`: raw_handler, or the async layer's
/// async_handler; `Make` adapts a typed callable to it). Copies share one table.
template <class Handler, class Make>
class method_registry {
  public:
    /// Registers (or replaces) the handler of `method`, for requests and notifications alike.
    void add_method(std::string method, Handler handler) {
        std::lock_guard lock(table_->mutex);
        table_->methods[std::move(method)] = std::move(handler);
    }
    /// Registers a typed handler (make_handler's rules): params by position or, with `names`,
    /// by name.
    template <class F>
    void add_method(std::string method, F f, std::vector<std::string> names) {
        add_method(std::move(method), Make{}(std::move(f), std::move(names)));
    }
    template <class F>
    requires(!std::is_convertible_v<F, Handler>) void add_method(std::string method, F f) {
        add_method(std::move(method), Make{}(std::move(f), {}));
    }

    /// Sets the handler of every method that has none of its own (call_context::method() names
    /// the method); without one, such calls are answered errc::method_not_found.
    void set_fallback(Handler handler) {
        std::lock_guard lock(table_->mutex);
        table_->fallback = std::move(handler);
    }

  protected:
    ~method_registry() = default;
    /// The handler of `method` in `table`, else the fallback, else an empty one.
    static Handler find_method(const detail::method_table<Handler>& table,
                               const std::string& method) {
        std::lock_guard lock(table.mutex);
        auto it = table.methods.find(method);
        return it != table.methods.end() ? it->second : table.fallback;
    }
    Handler find_method(const std::string& method) const { return find_method(*table_, method); }

    std::shared_ptr<detail::method_table<Handler>> table_ =
        std::make_shared<detail::method_table<Handler>>();
};

namespace detail {
struct make_raw_handler {
    template <class F>
    raw_handler operator()(F f, std::vector<std::string> names) const {
        return make_handler(std::move(f), std::move(names));
    }
};
}  // namespace detail

}  // namespace npipe::rpc
