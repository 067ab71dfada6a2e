// A reference-counted, eagerly started task that any number of coroutines may await:
// copies share one frame, the producer runs when an owner resumes it, and when it
// finishes it resumes every coroutine waiting for it. The flawed version keeps one
// waiting record: a later awaiter takes the pending record over.
//
// The library is single-threaded (one thread makes, copies, resumes, awaits and
// destroys), so its counts are plain integers. Awaiting is cancellation-safe: a
// coroutine destroyed while it waits unlinks its record, and a producer destroyed
// with records still linked tells their awaiters.
#ifndef STRESSCORO_TARGETS_SHARED_AWAITABLE_HPP_INCLUDED
#define STRESSCORO_TARGETS_SHARED_AWAITABLE_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace stresscoro::targets {

enum class awaiters_flaw {
    none,         // every awaiter links a record of its own
    overwritten,  // one record: a later awaiter writes its handle into the pending one
};

template <awaiters_flaw Flaw = awaiters_flaw::none>
class shared_awaitable {
public:
    struct promise_type;
    class awaiter;
    using handle_type = std::coroutine_handle<promise_type>;

    /// At final suspend: resume every waiting coroutine, then stay suspended; the last
    /// owner frees the frame.
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept {
            awaiter* w = std::exchange(h.promise().m_waiters, nullptr);
            while (w != nullptr) {
                awaiter* next = w->m_next;  // w's coroutine may finish while it runs
                w->m_linked = false;
                w->m_continuation.resume();
                w = next;
            }
        }
        void await_resume() const noexcept {}
    };

    /// `co_await pause()` inside a producer: suspend until an owner resumes it.
    struct pause_awaiter {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept { h.promise().m_paused = true; }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept = default;
        /// Destroyed unfinished with records linked: their awaiters are never resumed
        /// and must not unlink from this frame later.
        ~promise_type() {
            for (awaiter* w = m_waiters; w != nullptr; w = w->m_next) w->m_linked = false;
        }
        shared_awaitable get_return_object() noexcept {
            return shared_awaitable{handle_type::from_promise(*this)};
        }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        long m_owners = 1;  // get_return_object's result is the first owner
        int m_value = 0;
        bool m_paused = false;
        awaiter* m_waiters = nullptr;  // records of the waiting coroutines, newest first
    };

    /// The awaiter of `co_await t`: a record in the awaiting frame, linked into the
    /// producer's list for the whole wait.
    class awaiter {
    public:
        explicit awaiter(handle_type producer) noexcept : m_producer(producer) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (!m_linked) return;
            if constexpr (Flaw == awaiters_flaw::overwritten) {
                // Taken over by a later awaiter: the record serves them now, so it stays
                // linked, in a frame that is being freed.
                if (m_continuation != m_awaiting) return;
            }
            unlink();
        }

        bool await_ready() const noexcept { return !m_producer || m_producer.done(); }
        void await_suspend(std::coroutine_handle<> awaiting) noexcept {
            m_awaiting = awaiting;
            m_continuation = awaiting;
            promise_type& p = m_producer.promise();
            if constexpr (Flaw == awaiters_flaw::overwritten) {
                if (p.m_waiters != nullptr) {
                    p.m_waiters->m_continuation = awaiting;  // the earlier awaiter is forgotten
                    return;
                }
            }
            m_next = p.m_waiters;
            p.m_waiters = this;
            m_linked = true;
        }
        int await_resume() const noexcept { return m_producer ? m_producer.promise().m_value : -1; }

    private:
        friend struct final_awaiter;
        friend struct promise_type;

        void unlink() noexcept {
            awaiter** link = &m_producer.promise().m_waiters;
            while (*link != this) link = &(*link)->m_next;  // linked, so it is found
            *link = m_next;
            m_linked = false;
        }

        handle_type m_producer;
        std::coroutine_handle<> m_awaiting;      // the coroutine that made this record
        std::coroutine_handle<> m_continuation;  // the coroutine this record resumes
        awaiter* m_next = nullptr;
        bool m_linked = false;
    };

    explicit shared_awaitable(handle_type h) noexcept : m_handle(h) {}
    shared_awaitable(const shared_awaitable& other) noexcept : m_handle(other.m_handle) {
        if (m_handle) ++m_handle.promise().m_owners;
    }
    shared_awaitable(shared_awaitable&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    shared_awaitable& operator=(const shared_awaitable& other) noexcept {
        shared_awaitable copy(other);
        swap(*this, copy);
        return *this;
    }
    shared_awaitable& operator=(shared_awaitable&& other) noexcept {
        if (this != &other) release(std::exchange(m_handle, std::exchange(other.m_handle, {})));
        return *this;
    }
    ~shared_awaitable() { release(m_handle); }

    friend void swap(shared_awaitable& a, shared_awaitable& b) noexcept { std::swap(a.m_handle, b.m_handle); }

    /// Resume a producer paused at one of its pause points; otherwise do nothing.
    void resume() {
        if (!m_handle || m_handle.done() || !m_handle.promise().m_paused) return;
        m_handle.promise().m_paused = false;
        m_handle.resume();
    }

    bool done() const noexcept { return !m_handle || m_handle.done(); }
    int result() const noexcept { return m_handle && m_handle.done() ? m_handle.promise().m_value : -1; }
    long use_count() const noexcept { return m_handle ? m_handle.promise().m_owners : 0; }
    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }

    awaiter operator co_await() const noexcept { return awaiter{m_handle}; }

private:
    static void release(handle_type h) noexcept {
        if (h && --h.promise().m_owners == 0) h.destroy();
    }

    handle_type m_handle;
};

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_SHARED_AWAITABLE_HPP_INCLUDED
