// awaitlib: a small reference-counted, lazily started task that other tasks await.
// Copies share one frame; `co_await t` starts t if it has not started, and t's end
// resumes the one coroutine awaiting it.
//
// As written, destroying a coroutine suspended in `co_await t` leaves its handle in
// t's promise, and t resumes freed memory when it finishes. -DAWAITLIB_FIXED=1 builds
// the fixed version: the awaiter unregisters when the awaiting frame is destroyed,
// and a task destroyed first tells its awaiter.
//
// Single-threaded: one thread makes, copies, resumes, awaits and destroys.
#ifndef AWAITLIB_AWAITLIB_HPP_INCLUDED
#define AWAITLIB_AWAITLIB_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace awaitlib {

class task {
public:
    struct promise_type;
    class awaiter;
    using handle_type = std::coroutine_handle<promise_type>;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            promise_type& p = h.promise();
#if AWAITLIB_FIXED
            if (p.m_waiter != nullptr) std::exchange(p.m_waiter, nullptr)->m_registered = false;
#endif
            return std::exchange(p.m_continuation, std::noop_coroutine());
        }
        void await_resume() const noexcept {}
    };

    /// `co_await awaitlib::pause()` in a task: suspend until an owner resumes it.
    struct pause {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept { h.promise().m_paused = true; }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept {}
        ~promise_type() {
#if AWAITLIB_FIXED
            if (m_waiter != nullptr) m_waiter->m_registered = false;  // it is never resumed
#endif
        }
        task get_return_object() noexcept { return task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        long m_owners = 1;
        int m_value = 0;
        bool m_paused = true;  // not started yet, or at a pause
        std::coroutine_handle<> m_continuation = std::noop_coroutine();
        awaiter* m_waiter = nullptr;  // used by the fixed version only
    };

    /// Lives in the awaiting frame while it waits.
    class awaiter {
    public:
        explicit awaiter(handle_type child) noexcept : m_child(child) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
#if AWAITLIB_FIXED
            if (m_registered) {
                promise_type& p = m_child.promise();
                p.m_waiter = nullptr;
                p.m_continuation = std::noop_coroutine();
            }
#endif
        }
        bool await_ready() const noexcept { return !m_child || m_child.done(); }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            promise_type& p = m_child.promise();
            p.m_continuation = awaiting;
#if AWAITLIB_FIXED
            if (p.m_waiter != nullptr) p.m_waiter->m_registered = false;  // a second awaiter displaces the first
#endif
            p.m_waiter = this;
            m_registered = true;
            if (!p.m_paused) return std::noop_coroutine();  // running elsewhere: wait
            p.m_paused = false;
            return m_child;  // start or continue it now
        }
        int await_resume() const noexcept { return m_child ? m_child.promise().m_value : -1; }

    private:
        friend struct final_awaiter;
        friend struct promise_type;
        handle_type m_child;
        bool m_registered = false;
    };

    task(const task& other) noexcept : m_handle(other.m_handle) {
        if (m_handle) ++m_handle.promise().m_owners;
    }
    task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    task& operator=(task other) noexcept {
        std::swap(m_handle, other.m_handle);
        return *this;
    }
    ~task() {
        if (m_handle && --m_handle.promise().m_owners == 0) m_handle.destroy();
    }

    /// Resume a task that has not started or is at a pause; otherwise do nothing.
    void resume() {
        if (!m_handle || m_handle.done() || !m_handle.promise().m_paused) return;
        m_handle.promise().m_paused = false;
        m_handle.resume();
    }
    bool done() const noexcept { return !m_handle || m_handle.done(); }
    int result() const noexcept { return m_handle && m_handle.done() ? m_handle.promise().m_value : -1; }

    awaiter operator co_await() const noexcept { return awaiter{m_handle}; }

private:
    explicit task(handle_type h) noexcept : m_handle(h) {}
    handle_type m_handle;
};

}  // namespace awaitlib

#endif  // AWAITLIB_AWAITLIB_HPP_INCLUDED
