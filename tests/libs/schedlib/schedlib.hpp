// schedlib: lazily started tasks and one process-wide scheduler. `spawn(std::move(t))`
// hands t's frame to the scheduler, which owns it from then on: `run_one()` resumes one
// queued frame (a frame that pauses goes to the back of the queue, a finished one is
// freed) and `drain()` runs the queue empty. A frame spawned and not yet drained lives
// in the scheduler, on purpose.
//
// -DSCHEDLIB_NO_DRAIN=1 removes drain(): spawned frames are then never freed.
//
// Single-threaded. The queue is intrusive (linked through the promises), so the
// scheduler itself never allocates.
#ifndef SCHEDLIB_SCHEDLIB_HPP_INCLUDED
#define SCHEDLIB_SCHEDLIB_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace schedlib {

class task {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    struct pause {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type) const noexcept {}
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept {}
        task get_return_object() noexcept { return task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        int m_value = 0;
        promise_type* m_next = nullptr;  // the scheduler's queue
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

    /// Run the task to its next pause or its end; a finished or empty task is left alone.
    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }
    bool done() const noexcept { return !m_handle || m_handle.done(); }

    /// The frame, given up: the caller owns it now (spawn uses this).
    handle_type release() noexcept { return std::exchange(m_handle, {}); }

private:
    explicit task(handle_type h) noexcept : m_handle(h) {}
    handle_type m_handle;
};

class scheduler {
public:
    static scheduler& instance() noexcept {
        static scheduler s;
        return s;
    }

    /// Take over a frame and queue it.
    void adopt(task::handle_type h) noexcept {
        if (!h) return;
        if (h.done()) {
            h.destroy();
            return;
        }
        push(&h.promise());
    }

    /// Resume the oldest queued frame once; returns false when the queue was empty.
    bool run_one() {
        task::promise_type* p = m_head;
        if (p == nullptr) return false;
        m_head = p->m_next;
        if (m_head == nullptr) m_tail = nullptr;
        p->m_next = nullptr;
        auto h = task::handle_type::from_promise(*p);
        h.resume();
        if (h.done()) {
            h.destroy();
        } else {
            push(p);
        }
        return true;
    }

#if !SCHEDLIB_NO_DRAIN
    /// Run until nothing is queued: every spawned frame finishes and is freed.
    void drain() {
        while (run_one()) {
        }
    }
#endif

private:
    void push(task::promise_type* p) noexcept {
        if (m_tail != nullptr) {
            m_tail->m_next = p;
        } else {
            m_head = p;
        }
        m_tail = p;
    }

    task::promise_type* m_head = nullptr;
    task::promise_type* m_tail = nullptr;
};

/// Hand `t` to the scheduler; it runs when the scheduler gets to it.
inline void spawn(task t) { scheduler::instance().adopt(t.release()); }

}  // namespace schedlib

#endif  // SCHEDLIB_SCHEDLIB_HPP_INCLUDED
