// A small lazily started task, as a user's library might ship it. With
// TINY_SHARED_COPY the task is copyable and a copy shares the frame: both
// copies destroy it (the bug the buggy adapter exposes).
#ifndef TINY_TASK_HPP_INCLUDED
#define TINY_TASK_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace tiny {

template <bool SharedCopy>
class task {
public:
    struct promise_type {
        task get_return_object() noexcept {
            return task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_value(int v) noexcept { m_value = v; }
        void unhandled_exception() noexcept { std::terminate(); }
        int m_value = 0;
    };

    explicit task(std::coroutine_handle<promise_type> h) noexcept : m_handle(h) {}
    task(const task& other) noexcept requires SharedCopy : m_handle(other.m_handle) {}
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

    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }
    std::coroutine_handle<> handle() const noexcept { return m_handle; }

private:
    std::coroutine_handle<promise_type> m_handle;
};

template <bool SharedCopy>
task<SharedCopy> answer(int n) {
    co_return n + 1;
}

}  // namespace tiny

#endif  // TINY_TASK_HPP_INCLUDED
