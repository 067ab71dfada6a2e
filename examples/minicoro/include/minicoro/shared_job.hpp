// minicoro: a small C++20 coroutine "job" library, written as an example of a
// third-party library that stresscoro tests (see examples/README.md).
//
//     minicoro::shared_job<int> square(int n) { co_return n * n; }
//
//     auto job = square(7);       // lazily started: nothing has run yet
//     auto view = job;            // copies share one frame (use_count() == 2)
//     job.resume();               // runs to co_return
//     int r = *view.result();     // 49, seen through any copy
//
// A shared_job is a reference-counted handle to one coroutine frame. The count
// lives in the promise; the last owner to let go destroys the frame, from any
// thread. An owner may also set the result itself (say, to a fallback value).
//
// This copy carries one deliberate bug, in the move assignment operator. Build with
// -DMINICORO_FIXED=1 for the corrected version.
#ifndef MINICORO_SHARED_JOB_HPP_INCLUDED
#define MINICORO_SHARED_JOB_HPP_INCLUDED

#include <atomic>
#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#ifndef MINICORO_FIXED
#define MINICORO_FIXED 0
#endif

namespace minicoro {

template <class T>
class shared_job {
public:
    struct promise_type {
        // Declared, so the promise is not an aggregate: C++20 would otherwise let the
        // compiler initialise `owners` from the coroutine's first argument.
        promise_type() noexcept {}
        shared_job get_return_object() noexcept {
            return shared_job{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_value(T value) { result = std::move(value); }
        void unhandled_exception() noexcept { std::terminate(); }

        std::atomic<long> owners{1};  // get_return_object's result is the first owner
        std::optional<T> result;
    };
    using handle_type = std::coroutine_handle<promise_type>;

    shared_job() noexcept = default;

    shared_job(const shared_job& other) noexcept : m_handle(other.m_handle) {
        if (m_handle) m_handle.promise().owners.fetch_add(1, std::memory_order_relaxed);
    }

    shared_job(shared_job&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}

    shared_job& operator=(const shared_job& other) noexcept {
        shared_job copy(other);  // copy first: `a = a` must not free the frame
        swap(*this, copy);
        return *this;
    }

    shared_job& operator=(shared_job&& other) noexcept {
        if (this != &other) {
#if MINICORO_FIXED
            release();                                        // let go of the frame we held,
            m_handle = std::exchange(other.m_handle, nullptr);  // then take over theirs
#else
            m_handle = std::exchange(other.m_handle, nullptr);  // take over their frame...
            release();  // ...and "let go of ours": but m_handle is theirs now
#endif
        }
        return *this;
    }

    ~shared_job() { release(); }

    friend void swap(shared_job& a, shared_job& b) noexcept { std::swap(a.m_handle, b.m_handle); }

    /// Run the coroutine until its next suspension; a finished job is left alone.
    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }

    bool done() const noexcept { return !m_handle || m_handle.done(); }

    /// The result, once the coroutine has returned or an owner has set one.
    const T* result() const noexcept {
        return m_handle && m_handle.promise().result ? &*m_handle.promise().result : nullptr;
    }

    /// Set (or replace) the result every copy sees.
    void set_result(T value) {
        if (m_handle) m_handle.promise().result = std::move(value);
    }

    /// How many shared_job objects share this frame (0 for an empty one).
    long use_count() const noexcept {
        return m_handle ? m_handle.promise().owners.load(std::memory_order_relaxed) : 0;
    }

    handle_type handle() const noexcept { return m_handle; }

private:
    explicit shared_job(handle_type h) noexcept : m_handle(h) {}

    /// Drop this object's reference; the last one destroys the frame. Leaves
    /// m_handle as it was: callers overwrite it or are about to die.
    void release() noexcept {
        if (m_handle && m_handle.promise().owners.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            m_handle.destroy();
        }
    }

    handle_type m_handle;
};

}  // namespace minicoro

#endif  // MINICORO_SHARED_JOB_HPP_INCLUDED
