// A reference-counted task in the promise_ptr style: the count lives in the promise,
// copies share the frame, and the last owner destroys it.
#ifndef STRESSCORO_TARGETS_SHARED_TASK_HPP_INCLUDED
#define STRESSCORO_TARGETS_SHARED_TASK_HPP_INCLUDED

#include <stresscoro/tsan_fence.hpp>

#include <atomic>
#include <coroutine>
#include <exception>
#include <utility>

namespace stresscoro::targets {

enum class refcount_flaw {
    none,               // decrement with acq_rel
    fence,              // decrement with release, acquire fence at zero: also correct
    relaxed_decrement,  // the last owner's destroy is not ordered after others' writes
    no_self_check,      // copy assignment releases before it acquires: `a = a` frees
};

template <refcount_flaw Flaw = refcount_flaw::none>
class shared_task {
public:
    struct promise_type {
        promise_type() noexcept = default;
        shared_task get_return_object() noexcept {
            return shared_task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        // Starts at one: get_return_object's result is the first owner.
        std::atomic<long> m_owners{1};
        int m_value = 0;
        long m_observations = 0;  // written by whichever owner touches the task
    };
    using handle_type = std::coroutine_handle<promise_type>;

    explicit shared_task(handle_type h) noexcept : m_handle(h) {}

    shared_task(const shared_task& other) noexcept : m_handle(other.m_handle) { acquire(); }

    shared_task(shared_task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}

    shared_task& operator=(const shared_task& other) noexcept {
        if constexpr (Flaw == refcount_flaw::no_self_check) {
            release(m_handle);  // with `a = a` this may free the frame we are about to share
            m_handle = other.m_handle;
            acquire();
        } else {
            shared_task copy(other);
            swap(*this, copy);
        }
        return *this;
    }

    shared_task& operator=(shared_task&& other) noexcept {
        if (this != &other) {
            release(std::exchange(m_handle, std::exchange(other.m_handle, {})));
        }
        return *this;
    }

    ~shared_task() { release(m_handle); }

    friend void swap(shared_task& a, shared_task& b) noexcept { std::swap(a.m_handle, b.m_handle); }

    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }

    /// Record that this owner looked at the result: a plain write to shared state,
    /// which the last owner's destroy must happen after.
    void observe() noexcept {
        if (m_handle) m_handle.promise().m_observations += 1;
    }

    long use_count() const noexcept {
        return m_handle ? m_handle.promise().m_owners.load(std::memory_order_relaxed) : 0;
    }
    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }

private:
    void acquire() noexcept {
        // Relaxed is enough: the new owner was made from an existing one, which
        // already keeps the frame alive and is ordered before us.
        if (m_handle) m_handle.promise().m_owners.fetch_add(1, std::memory_order_relaxed);
    }

    /// Give up one ownership of `h`; the last owner destroys the frame.
    static void release(handle_type h) noexcept {
        if (!h) return;
        std::atomic<long>& owners = h.promise().m_owners;
        if constexpr (Flaw == refcount_flaw::relaxed_decrement) {
            // Wrong: nothing orders another owner's writes before our destroy.
            if (owners.fetch_sub(1, std::memory_order_relaxed) == 1) h.destroy();
        } else if constexpr (Flaw == refcount_flaw::fence) {
            // Release publishes our writes; the acquire fence on the last decrement
            // makes every owner's writes visible before the destroy.
            if (owners.fetch_sub(1, std::memory_order_release) == 1) {
                std::atomic_thread_fence(std::memory_order_acquire);
                STRESSCORO_TSAN_ACQUIRE(&owners);  // lets an opted-in TSan see the fence
                h.destroy();
            }
        } else {
            // acq_rel: release our writes, and acquire everyone's when we are last.
            if (owners.fetch_sub(1, std::memory_order_acq_rel) == 1) h.destroy();
        }
    }

    handle_type m_handle;
};

/// A shared task that finishes with `value`.
template <refcount_flaw Flaw>
shared_task<Flaw> shared_value(int value) {
    co_return value;
}

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_SHARED_TASK_HPP_INCLUDED
