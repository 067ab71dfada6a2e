// restrictlib: a correct, lazily started, move-only task whose `co_await` works only
// inside another restrictlib::task: the awaiter's await_suspend takes the awaiting
// coroutine's handle as a handle to restrictlib's own promise type, and records in that
// promise which task it waits for. Any other coroutine (a plain std::coroutine_handle<>)
// cannot co_await it: that does not compile.
//
// Destroying a task that waits clears its child's continuation; destroying a child
// that is awaited clears the waiter's record of it.
//
// Single-threaded.
#ifndef RESTRICTLIB_RESTRICTLIB_HPP_INCLUDED
#define RESTRICTLIB_RESTRICTLIB_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace restrictlib {

class task {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            promise_type& p = h.promise();
            if (p.m_parent) {
                handle_type parent = std::exchange(p.m_parent, {});
                parent.promise().m_child = {};
                return parent;
            }
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept {}
        /// Unlink from the coroutine this one waits for, and from the one waiting for it.
        ~promise_type() {
            if (m_child) m_child.promise().m_parent = {};
            if (m_parent) m_parent.promise().m_child = {};
        }
        task get_return_object() noexcept { return task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        int m_value = 0;
        bool m_paused = true;
        handle_type m_parent;  // the task waiting for this one
        handle_type m_child;   // the task this one waits for
    };

    struct pause {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept { h.promise().m_paused = true; }
        void await_resume() const noexcept {}
    };

    struct awaiter {
        handle_type m_child;
        bool await_ready() const noexcept { return !m_child || m_child.done(); }
        /// Only a restrictlib::task may wait: the link lives in both promises.
        std::coroutine_handle<> await_suspend(handle_type awaiting) noexcept {
            awaiting.promise().m_child = m_child;
            promise_type& p = m_child.promise();
            p.m_parent = awaiting;
            if (!p.m_paused) return std::noop_coroutine();
            p.m_paused = false;
            return m_child;
        }
        int await_resume() const noexcept { return m_child ? m_child.promise().m_value : -1; }
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

}  // namespace restrictlib

#endif  // RESTRICTLIB_RESTRICTLIB_HPP_INCLUDED
