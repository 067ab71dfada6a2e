// A lazily started, move-only owning task with symmetric-transfer continuations,
// plus the flaws that real task types ship with, each confined to one member.
#ifndef STRESSCORO_TARGETS_TASK_HPP_INCLUDED
#define STRESSCORO_TARGETS_TASK_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace stresscoro::targets {

enum class task_flaw {
    none,
    copyable,            // a copy constructor that shares the raw handle
    move_keeps_source,   // a move constructor that forgets to null the source
    leaks_unfinished,    // the destructor only destroys finished frames
    final_never,         // final_suspend is suspend_never, yet the destructor destroys
};

template <task_flaw Flaw = task_flaw::none>
class task {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            return h.promise().m_continuation;
        }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept = default;
        task get_return_object() noexcept { return task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        auto final_suspend() const noexcept {
            if constexpr (Flaw == task_flaw::final_never) {
                return std::suspend_never{};  // the frame frees itself...
            } else {
                return final_awaiter{};
            }
        }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        int m_value = 0;
        std::coroutine_handle<> m_continuation = std::noop_coroutine();
    };

    struct awaiter {
        handle_type m_handle;
        bool await_ready() const noexcept { return !m_handle || m_handle.done(); }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            m_handle.promise().m_continuation = awaiting;
            return m_handle;  // symmetric transfer: no stack growth per await
        }
        int await_resume() const noexcept { return m_handle ? m_handle.promise().m_value : -1; }
    };

    task() noexcept = default;
    explicit task(handle_type h) noexcept : m_handle(h) {}

    task(const task& other) noexcept requires(Flaw == task_flaw::copyable)
        : m_handle(other.m_handle) {}  // both copies now destroy the same frame

    task(task&& other) noexcept : m_handle(take(other)) {}

    task& operator=(task&& other) noexcept {
        if (this != &other) {
            reset();
            m_handle = std::exchange(other.m_handle, {});
        }
        return *this;
    }

    ~task() { reset(); }

    /// Run the task until its next suspension; a finished or empty task is left alone.
    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }

    bool done() const noexcept { return !m_handle || m_handle.done(); }
    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }

    awaiter operator co_await() const& noexcept { return awaiter{m_handle}; }

private:
    static handle_type take(task& other) noexcept {
        if constexpr (Flaw == task_flaw::move_keeps_source) {
            return other.m_handle;  // the source still owns the frame
        } else {
            return std::exchange(other.m_handle, {});
        }
    }

    void reset() noexcept {
        if (!m_handle) return;
        if constexpr (Flaw == task_flaw::leaks_unfinished) {
            if (m_handle.done()) m_handle.destroy();  // an unstarted task is never freed
        } else {
            m_handle.destroy();  // with final_never: ...and is destroyed again here
        }
        m_handle = {};
    }

    handle_type m_handle;
};

/// A task that finishes with `value`.
template <task_flaw Flaw>
task<Flaw> value_task(int value) {
    co_return value;
}

/// A task that awaits `depth` nested value tasks and returns their sum.
template <task_flaw Flaw>
task<Flaw> sum_task(int depth) {
    int sum = 0;
    for (int i = 0; i < depth; ++i) sum += co_await value_task<Flaw>(i);
    co_return sum;
}

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_TASK_HPP_INCLUDED
