// A lazily started, move-only task whose coroutines await each other: `co_await t`
// waits for t, `co_await std::move(t)` waits and then frees t's frame, and when_all
// runs two tasks and adds up their results. Three flaws that real composing task
// libraries ship with, each confined to one place.
//
// The library is single-threaded: one thread makes, resumes, awaits and destroys.
// Awaiting is cancellation-safe: destroying a coroutine suspended in `co_await t`
// unregisters it from t, and destroying t unregisters t from its awaiter. A task has
// one awaiter at a time (await a task once: a second awaiter displaces the first,
// which is then never resumed).
#ifndef STRESSCORO_TARGETS_COMPOSE_TASK_HPP_INCLUDED
#define STRESSCORO_TARGETS_COMPOSE_TASK_HPP_INCLUDED

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>

namespace stresscoro::targets {

enum class compose_flaw {
    none,
    keeps_references,   // when_all's frame refers to the tasks it was given instead of owning them
    resumes_inline,     // when_all's last child resumes the awaiting coroutine inside await_suspend
    move_assign_leaks,  // move assignment takes the source's frame and forgets its own
};

template <compose_flaw Flaw = compose_flaw::none>
class compose_task {
public:
    struct promise_type;
    class awaiter;
    class all_awaiter;
    using handle_type = std::coroutine_handle<promise_type>;

    /// Where a finished task hands control: to a when_all counting down, to the one
    /// coroutine awaiting it, or back to whoever resumed it.
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            promise_type& p = h.promise();
            if (p.m_group != nullptr) return p.m_group->arrive();
            if (awaiter* w = std::exchange(p.m_waiter, nullptr)) {
                w->m_registered = false;
                return w->m_continuation;
            }
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    /// `co_await pause()` inside a task: suspend until the owner resumes it.
    struct pause_awaiter {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept { h.promise().m_paused = true; }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept = default;
        /// A task destroyed while a coroutine awaits it: that coroutine must not unregister
        /// from a freed frame later. It is never resumed (the task never finishes).
        ~promise_type() {
            if (m_waiter != nullptr) m_waiter->m_registered = false;
        }
        compose_task get_return_object() noexcept { return compose_task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        int m_value = 0;
        bool m_paused = true;             // at its start or at a pause(): the owner may resume it
        awaiter* m_waiter = nullptr;      // the coroutine awaiting this task, if any
        all_awaiter* m_group = nullptr;   // the when_all running this task, if any
    };

    /// The awaiter of `co_await t` (t stays the owner) and of `co_await std::move(t)`
    /// (the awaiter takes the frame and frees it when the awaiting expression ends). It
    /// lives in the awaiting frame for the whole wait.
    class awaiter {
    public:
        awaiter(handle_type child, bool owns) noexcept : m_child(child), m_owns(owns) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (m_registered) m_child.promise().m_waiter = nullptr;  // destroyed mid-wait
            if (m_owns && m_child) m_child.destroy();
        }

        bool await_ready() const noexcept { return !m_child || m_child.done(); }
        /// Register, then run the child at once by symmetric transfer (no stack growth).
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            m_continuation = awaiting;
            m_registered = true;
            promise_type& p = m_child.promise();
            if (p.m_waiter != nullptr) p.m_waiter->m_registered = false;  // displaced: await_twice is a precondition
            p.m_waiter = this;
            p.m_paused = false;
            return m_child;
        }
        int await_resume() const noexcept { return m_child ? m_child.promise().m_value : -1; }

    private:
        friend struct final_awaiter;
        friend struct promise_type;
        handle_type m_child;
        std::coroutine_handle<> m_continuation;
        bool m_owns;
        bool m_registered = false;
    };

    /// The awaiter of when_all: starts both children, continues the awaiting coroutine
    /// once both have finished, and returns the sum of their results.
    class all_awaiter {
    public:
        all_awaiter(compose_task& a, compose_task& b) noexcept : m_children{&a, &b} {}
        all_awaiter(const all_awaiter&) = delete;
        all_awaiter& operator=(const all_awaiter&) = delete;

        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
            m_continuation = awaiting;
            for (std::size_t i = 0; i < m_count; ++i) start(*m_children[i]);
            if constexpr (Flaw == compose_flaw::resumes_inline) {
                // "The last child resumes us": it already may have, from inside start(),
                // and the loop above read this awaiter after that coroutine went on.
                return true;
            } else {
                // Our own share of the count: if both children already finished, nobody
                // resumed us, and we continue without suspending.
                return arrive_own_share();
            }
        }
        int await_resume() const noexcept {
            int sum = 0;
            for (std::size_t i = 0; i < m_count; ++i) {
                handle_type h = m_children[i]->m_handle;
                if (h) sum += h.promise().m_value;
            }
            return sum;
        }

        /// A child finished: the last arrival continues the awaiting coroutine.
        std::coroutine_handle<> arrive() noexcept {
            // acq_rel: our child's result is released to whoever arrives last, and the
            // last arrival acquires every child's result before the awaiting coroutine
            // reads them (children may finish on other threads in a library that allows it).
            if (m_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) return m_continuation;
            return std::noop_coroutine();
        }

    private:
        void start(compose_task& child) {
            handle_type h = child.m_handle;
            if (!h || h.done()) {
                std::coroutine_handle<> next = arrive();
                if constexpr (Flaw == compose_flaw::resumes_inline) next.resume();
                return;  // with our own share outstanding, the count cannot reach zero here
            }
            h.promise().m_group = this;
            h.promise().m_paused = false;
            h.resume();  // runs until the child pauses or finishes (and arrives)
        }

        bool arrive_own_share() noexcept {
            // acq_rel as in arrive(): if we are last we read both results next.
            return m_pending.fetch_sub(1, std::memory_order_acq_rel) != 1;
        }

        compose_task* m_children[2];
        std::size_t m_count = 2;
        std::coroutine_handle<> m_continuation;
        // One count per child, plus one for await_suspend itself so that no child can
        // be the last while await_suspend still runs. The flawed version counts only
        // the children.
        std::atomic<int> m_pending{Flaw == compose_flaw::resumes_inline ? 2 : 3};
    };

    compose_task() noexcept = default;
    explicit compose_task(handle_type h) noexcept : m_handle(h) {}
    compose_task(compose_task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}

    compose_task& operator=(compose_task&& other) noexcept {
        if (this != &other) {
            if constexpr (Flaw == compose_flaw::move_assign_leaks) {
                m_handle = std::exchange(other.m_handle, {});  // the frame we held is lost
            } else {
                if (m_handle) m_handle.destroy();
                m_handle = std::exchange(other.m_handle, {});
            }
        }
        return *this;
    }

    ~compose_task() {
        if (m_handle) m_handle.destroy();
    }

    /// Resume a task paused at its start or at one of its own pause points; a task that
    /// is waiting for another task, or finished, or empty, is left alone.
    void resume() {
        if (m_handle && !m_handle.done() && m_handle.promise().m_paused) {
            m_handle.promise().m_paused = false;
            m_handle.resume();
        }
    }

    bool done() const noexcept { return !m_handle || m_handle.done(); }
    /// The finished task's result; -1 while it has none.
    int result() const noexcept { return m_handle && m_handle.done() ? m_handle.promise().m_value : -1; }
    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }

    awaiter operator co_await() & noexcept { return awaiter{m_handle, false}; }
    awaiter operator co_await() && noexcept { return awaiter{std::exchange(m_handle, {}), true}; }

private:
    handle_type m_handle;
};

/// A task that awaits `child`, frees it, and returns its result plus `add`.
template <compose_flaw Flaw>
compose_task<Flaw> await_it(compose_task<Flaw> child, int add) {
    co_return co_await std::move(child) + add;
}

namespace detail {

template <compose_flaw Flaw>
compose_task<Flaw> all_of_owned(compose_task<Flaw> a, compose_task<Flaw> b) {
    co_return co_await typename compose_task<Flaw>::all_awaiter(a, b);
}

// Reference parameters of a coroutine are kept as references in its frame.
template <compose_flaw Flaw>
compose_task<Flaw> all_of_referenced(compose_task<Flaw>& a, compose_task<Flaw>& b) {
    co_return co_await typename compose_task<Flaw>::all_awaiter(a, b);
}

}  // namespace detail

/// A task that runs `a` and `b` and returns the sum of their results. It takes both
/// over: `when_all(f(), g())` may be awaited in a later statement.
template <compose_flaw Flaw>
compose_task<Flaw> when_all(compose_task<Flaw>&& a, compose_task<Flaw>&& b) {
    if constexpr (Flaw == compose_flaw::keeps_references) {
        return detail::all_of_referenced(a, b);  // ...but here it only refers to them
    } else {
        return detail::all_of_owned(std::move(a), std::move(b));
    }
}

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_COMPOSE_TASK_HPP_INCLUDED
