// npipe/asio/deadline_list.hpp: one timer for the same timeout over any number of connections.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <system_error>
#include <utility>

namespace npipe::asio {

class deadline_list;

/// A place in at most one deadline_list: embed one in (or derive from it for) each connection's
/// state. Three pointers and a time point; no timer, no allocation. Leaves its list when
/// destroyed. Not copyable or movable (the list points at it).
class deadline_entry {
  public:
    using clock = std::chrono::steady_clock;

    deadline_entry() noexcept = default;
    ~deadline_entry();
    deadline_entry(const deadline_entry&) = delete;
    deadline_entry& operator=(const deadline_entry&) = delete;

    /// Whether the entry is in a list (its timeout is running).
    bool watched() const noexcept { return owner_ != nullptr; }

    /// When the entry's timeout expires (meaningful while watched()).
    clock::time_point deadline() const noexcept { return deadline_; }

  private:
    friend class deadline_list;
    deadline_list* owner_ = nullptr;
    deadline_entry* prev_ = nullptr;
    deadline_entry* next_ = nullptr;
    clock::time_point deadline_{};
};

/// The entries waiting under one timeout (an idle timeout, or a write that makes no progress),
/// oldest deadline first. Every entry gets the same timeout, so restarting the one that made
/// progress means moving it to the back, which keeps the list sorted: one steady_timer serves
/// 10,000 connections, watch() and unwatch() cost O(1), and a connection carries no timer of
/// its own (whose pending wait would allocate per connection and per restart).
///
/// When an entry's deadline passes it leaves the list and `on_expire` is called with it, from a
/// handler on the list's executor (typically it closes the connection, whose pending operation
/// then completes with operation_aborted). The handler may watch or unwatch any entry,
/// this one included, and destroy entries other than the one it was given. Like every Asio
/// I/O object, the list is not safe for concurrent use: use it from one thread (or strand).
///
/// Destroying the list takes every entry out (so entries may outlive it) and cancels its timer.
class deadline_list {
  public:
    using clock = deadline_entry::clock;
    using expiry_handler = std::function<void(deadline_entry&)>;

    /// A list whose entries expire `timeout` after their last watch(). A zero or negative
    /// timeout means none: watch() then only takes an entry out of the list it was in.
    deadline_list(const ::asio::any_io_executor& ex, clock::duration timeout,
                  expiry_handler on_expire)
        : timer_(ex), timeout_(timeout), on_expire_(std::move(on_expire)) {}
    ~deadline_list() {
        while (head_)
            unlink(*head_);
    }
    deadline_list(const deadline_list&) = delete;
    deadline_list& operator=(const deadline_list&) = delete;

    /// (Re)starts `e`'s timeout from now in this list, taking it out of any list it was in.
    void watch(deadline_entry& e) {
        if (e.owner_)
            e.owner_->unlink(e);
        if (timeout_ <= clock::duration::zero())
            return;
        e.deadline_ = clock::now() + timeout_;
        e.owner_ = this;
        e.prev_ = tail_;
        e.next_ = nullptr;
        (tail_ ? tail_->next_ : head_) = &e;
        tail_ = &e;
        ++size_;
        if (!armed_)
            arm();
    }

    /// Stops `e`'s timeout (in whichever list it is); nothing when it is in none.
    static void unwatch(deadline_entry& e) noexcept {
        if (e.owner_)
            e.owner_->unlink(e);
    }

    /// The list's timeout.
    clock::duration timeout() const noexcept { return timeout_; }

    /// The number of entries in the list.
    std::size_t size() const noexcept { return size_; }

  private:
    void unlink(deadline_entry& e) noexcept {
        (e.prev_ ? e.prev_->next_ : head_) = e.next_;
        (e.next_ ? e.next_->prev_ : tail_) = e.prev_;
        e.prev_ = e.next_ = nullptr;
        e.owner_ = nullptr;
        --size_;
    }

    // The timer may fire for a head that has since moved back; it then waits for the new head.
    void arm() {
        armed_ = true;
        timer_.expires_at(head_->deadline_);
        timer_.async_wait([this](std::error_code ec) {
            // The only cancellation is the timer's destruction with the list: touch nothing.
            if (ec)
                return;
            armed_ = false;
            auto now = clock::now();
            while (head_ && head_->deadline_ <= now) {
                deadline_entry& e = *head_;
                unlink(e);
                if (on_expire_)
                    on_expire_(e);
            }
            if (head_ && !armed_)
                arm();
        });
    }

    ::asio::steady_timer timer_;
    clock::duration timeout_;
    expiry_handler on_expire_;
    deadline_entry* head_ = nullptr;
    deadline_entry* tail_ = nullptr;
    std::size_t size_ = 0;
    bool armed_ = false;
};

inline deadline_entry::~deadline_entry() {
    deadline_list::unwatch(*this);
}

}  // namespace npipe::asio
