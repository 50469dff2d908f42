#pragma once

#include <mutex>
#include <unordered_map>
#include <utility>

namespace npipe::detail {

/// The client end of an anonymous pipe that its server, in this process, still owns. A client
/// built from the handle string in the same process takes the handle over from its server
/// instead of both closing it: the second close would hit whatever reused the handle's number.
/// One process-wide mutex guards every owner and the index of handles, so a take-over and the
/// server's own dispose never race. `Owned` is the platform's RAII handle (get, release, reset,
/// explicit bool); `Handle` is its raw value.
template <class Owned, class Handle>
class owned_client_handle {
  public:
    owned_client_handle() = default;
    owned_client_handle(const owned_client_handle&) = delete;
    owned_client_handle& operator=(const owned_client_handle&) = delete;
    ~owned_client_handle() { dispose(); }

    /// Takes ownership of the client end and lists it for take-over.
    void adopt(Owned client) {
        std::lock_guard lock(mutex());
        owners()[client.get()] = this;
        client_ = std::move(client);
    }

    /// The handle, or `none` once disposed of, released or taken over.
    Handle get(Handle none) const noexcept {
        std::lock_guard lock(mutex());
        return client_ ? client_.get() : none;
    }

    /// Closes the server's copy (DisposeLocalCopyOfClientHandle).
    void dispose() noexcept {
        std::lock_guard lock(mutex());
        if (client_) {
            owners().erase(client_.get());
            client_.reset();
        }
    }

    /// Hands the handle to the caller, who closes it; `none` if there is none.
    Handle release(Handle none) noexcept {
        std::lock_guard lock(mutex());
        if (!client_)
            return none;
        owners().erase(client_.get());
        return client_.release();
    }

    /// A client in this process now owns `handle`: the server that owned it forgets it without
    /// closing it. Nothing happens for a handle no server here owns (it came from a parent).
    static void taken_over(Handle handle) noexcept {
        std::lock_guard lock(mutex());
        if (auto it = owners().find(handle); it != owners().end()) {
            it->second->client_.release();
            owners().erase(it);
        }
    }

  private:
    static std::mutex& mutex() noexcept {
        static std::mutex m;
        return m;
    }
    static std::unordered_map<Handle, owned_client_handle*>& owners() noexcept {
        static std::unordered_map<Handle, owned_client_handle*> map;
        return map;
    }

    Owned client_;
};

}  // namespace npipe::detail
