// strictlib: a correct, lazily started, move-only task with documented preconditions,
// checked by assertions that abort:
//   - a moved-from task may only be destroyed or assigned to (awaiting, resuming or
//     swapping it is a precondition violation);
//   - swap(a, a) is a precondition violation;
//   - a task is awaited once (not checked: a second awaiter displaces the first, which
//     is then never resumed).
// Everything else is safe, including destroying a coroutine while it awaits a task
// (the awaiter unregisters) and destroying a task while a coroutine awaits it.
//
// Single-threaded: one thread makes, resumes, awaits and destroys.
#ifndef STRICTLIB_STRICTLIB_HPP_INCLUDED
#define STRICTLIB_STRICTLIB_HPP_INCLUDED

#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

#define STRICTLIB_EXPECTS(cond)                                                          \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            std::fprintf(stderr, "strictlib: precondition failed: %s (%s:%d)\n", #cond, \
                         __FILE__, __LINE__);                                            \
            std::abort();                                                                \
        }                                                                                \
    } while (0)

namespace strictlib {

class task {
public:
    struct promise_type;
    class awaiter;
    using handle_type = std::coroutine_handle<promise_type>;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            if (awaiter* w = std::exchange(h.promise().m_waiter, nullptr)) {
                w->m_registered = false;
                return w->m_continuation;
            }
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    struct pause {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept { h.promise().m_paused = true; }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept {}
        ~promise_type() {
            if (m_waiter != nullptr) m_waiter->m_registered = false;  // it is never resumed
        }
        task get_return_object() noexcept { return task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        int m_value = 0;
        bool m_paused = true;
        awaiter* m_waiter = nullptr;
    };

    class awaiter {
    public:
        explicit awaiter(handle_type child) noexcept : m_child(child) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (m_registered) m_child.promise().m_waiter = nullptr;  // destroyed mid-wait
        }
        bool await_ready() const noexcept { return m_child.done(); }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            m_continuation = awaiting;
            m_registered = true;
            promise_type& p = m_child.promise();
            if (p.m_waiter != nullptr) p.m_waiter->m_registered = false;  // a second awaiter displaces the first
            p.m_waiter = this;
            if (!p.m_paused) return std::noop_coroutine();
            p.m_paused = false;
            return m_child;
        }
        int await_resume() const noexcept { return m_child.promise().m_value; }

    private:
        friend struct final_awaiter;
        friend struct promise_type;
        handle_type m_child;
        std::coroutine_handle<> m_continuation;
        bool m_registered = false;
    };

    task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            if (m_handle) m_handle.destroy();
            m_handle = std::exchange(other.m_handle, {});
        }
        return *this;
    }
    ~task() {
        if (m_handle) m_handle.destroy();
    }

    friend void swap(task& a, task& b) noexcept {
        STRICTLIB_EXPECTS(&a != &b);
        STRICTLIB_EXPECTS(a.m_handle && b.m_handle);
        std::swap(a.m_handle, b.m_handle);
    }

    /// Resume a task that has not started or is at a pause; otherwise do nothing.
    void resume() {
        STRICTLIB_EXPECTS(m_handle);
        if (m_handle.done() || !m_handle.promise().m_paused) return;
        m_handle.promise().m_paused = false;
        m_handle.resume();
    }
    bool done() const noexcept { return !m_handle || m_handle.done(); }
    int result() const noexcept { return m_handle && m_handle.done() ? m_handle.promise().m_value : -1; }

    awaiter operator co_await() const noexcept {
        STRICTLIB_EXPECTS(m_handle);  // not moved-from
        return awaiter{m_handle};
    }

private:
    explicit task(handle_type h) noexcept : m_handle(h) {}
    handle_type m_handle;
};

}  // namespace strictlib

#endif  // STRICTLIB_STRICTLIB_HPP_INCLUDED
