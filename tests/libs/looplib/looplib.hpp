// looplib: lazily started tasks and an event loop object that runs spawned ones.
// `loop.spawn(std::move(t))` hands t's frame to the loop, which owns it from then on:
// `run_one()` resumes one ready frame (a frame that yields is queued again, a finished
// one is freed), and the loop's destructor frees whatever is still queued. The ready
// queue's storage is kept between turns on purpose and released with the loop.
//
// As written the task is correct. -DLOOPLIB_SEEDED=1 seeds a bug: move assignment
// takes the source's frame and forgets the one it held.
//
// Single-threaded: the loop and its tasks live on one thread.
#ifndef LOOPLIB_LOOPLIB_HPP_INCLUDED
#define LOOPLIB_LOOPLIB_HPP_INCLUDED

#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>
#include <vector>

namespace looplib {

class task {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    /// `co_await looplib::yield{}`: give the thread back; a spawned task is queued again.
    struct yield {
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<>) const noexcept {}
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
    };

    task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
#if !LOOPLIB_SEEDED
            if (m_handle) m_handle.destroy();
#endif
            m_handle = std::exchange(other.m_handle, {});  // seeded: the old frame is lost
        }
        return *this;
    }
    ~task() {
        if (m_handle) m_handle.destroy();
    }

    /// Run the task to its next yield or its end; a finished or empty task is left alone.
    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }
    bool done() const noexcept { return !m_handle || m_handle.done(); }
    int result() const noexcept { return m_handle && m_handle.done() ? m_handle.promise().m_value : -1; }

    /// The frame, given up: the caller owns it now.
    handle_type release() noexcept { return std::exchange(m_handle, {}); }

private:
    explicit task(handle_type h) noexcept : m_handle(h) {}
    handle_type m_handle;
};

class loop {
public:
    loop() = default;
    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;
    /// Frees every frame still queued: the loop owns what was spawned on it.
    ~loop() {
        for (std::size_t i = m_head; i < m_ready.size(); ++i) m_ready[i].destroy();
    }

    /// Take over `t`'s frame and queue it.
    void spawn(task t) {
        task::handle_type h = t.release();
        if (!h) return;
        if (h.done()) {
            h.destroy();
        } else {
            m_ready.push_back(h);
        }
    }

    /// Resume the oldest ready frame once; false when nothing was ready.
    bool run_one() {
        if (m_head == m_ready.size()) return false;
        task::handle_type h = m_ready[m_head++];
        if (m_head == m_ready.size()) {
            m_ready.clear();  // keeps the storage for the next turns
            m_head = 0;
        }
        h.resume();
        if (h.done()) {
            h.destroy();
        } else {
            m_ready.push_back(h);
        }
        return true;
    }

    std::size_t pending() const noexcept { return m_ready.size() - m_head; }

private:
    std::vector<task::handle_type> m_ready;
    std::size_t m_head = 0;
};

}  // namespace looplib

#endif  // LOOPLIB_LOOPLIB_HPP_INCLUDED
