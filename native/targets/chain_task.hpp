// A task that awaits a chain of nested tasks. The correct version hands control
// from one frame to the next by symmetric transfer, so the stack stays flat at any
// depth; the flawed one resumes each link from inside the previous one.
#ifndef STRESSCORO_TARGETS_CHAIN_TASK_HPP_INCLUDED
#define STRESSCORO_TARGETS_CHAIN_TASK_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace stresscoro::targets {

enum class chain_flaw {
    none,
    nested_resume,  // await_suspend and final_suspend call resume(): one stack frame per link
};

template <chain_flaw Flaw = chain_flaw::none>
class chain_task {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        auto await_suspend(handle_type h) const noexcept {
            if constexpr (Flaw == chain_flaw::nested_resume) {
                h.promise().m_continuation.resume();  // grows the stack
            } else {
                return h.promise().m_continuation;
            }
        }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept = default;
        chain_task get_return_object() noexcept { return chain_task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        int m_value = 0;
        std::coroutine_handle<> m_continuation = std::noop_coroutine();
    };

    struct awaiter {
        handle_type m_handle;
        bool await_ready() const noexcept { return !m_handle || m_handle.done(); }
        auto await_suspend(std::coroutine_handle<> awaiting) noexcept {
            m_handle.promise().m_continuation = awaiting;
            if constexpr (Flaw == chain_flaw::nested_resume) {
                m_handle.resume();  // grows the stack
            } else {
                return m_handle;
            }
        }
        int await_resume() const noexcept { return m_handle ? m_handle.promise().m_value : -1; }
    };

    explicit chain_task(handle_type h) noexcept : m_handle(h) {}
    chain_task(chain_task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    chain_task& operator=(chain_task&& other) noexcept {
        if (this != &other) {
            if (m_handle) m_handle.destroy();
            m_handle = std::exchange(other.m_handle, {});
        }
        return *this;
    }
    ~chain_task() {
        if (m_handle) m_handle.destroy();
    }

    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }
    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }
    awaiter operator co_await() const& noexcept { return awaiter{m_handle}; }

private:
    handle_type m_handle;
};

/// Awaits a chain `depth` links long; returns the depth.
template <chain_flaw Flaw>
chain_task<Flaw> chain(int depth) {
    if (depth == 0) co_return 0;
    co_return 1 + co_await chain<Flaw>(depth - 1);
}

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_CHAIN_TASK_HPP_INCLUDED
