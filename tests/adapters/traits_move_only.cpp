// stresscoro: name=traits-move-only
// stresscoro: summary=a move-only task (copy deleted) that declares resume and awaitable
//
// tests/test_user_library.py checks the op set the driver derives: moves, move
// assignment and swap from the type, resume and await from the adapter, no copies.
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <exception>
#include <utility>

class move_only_task {
public:
    struct promise_type {
        promise_type() noexcept {}
        move_only_task get_return_object() noexcept {
            return move_only_task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        auto final_suspend() noexcept {
            struct to_continuation {
                bool await_ready() noexcept { return false; }
                std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                    auto next = h.promise().continuation;
                    return next ? next : std::noop_coroutine();
                }
                void await_resume() noexcept {}
            };
            return to_continuation{};
        }
        void return_value(int v) noexcept { value = v; }
        void unhandled_exception() noexcept { std::terminate(); }
        int value = 0;
        std::coroutine_handle<> continuation;
    };

    move_only_task(const move_only_task&) = delete;
    move_only_task& operator=(const move_only_task&) = delete;
    move_only_task(move_only_task&& o) noexcept : m_h(std::exchange(o.m_h, {})) {}
    move_only_task& operator=(move_only_task&& o) noexcept {
        if (this != &o) {
            if (m_h) m_h.destroy();
            m_h = std::exchange(o.m_h, {});
        }
        return *this;
    }
    ~move_only_task() {
        if (m_h) m_h.destroy();
    }

    void resume() {
        if (m_h && !m_h.done()) m_h.resume();
    }

    auto operator co_await() & noexcept {
        struct awaiter {
            std::coroutine_handle<promise_type> h;
            bool await_ready() noexcept { return !h || h.done(); }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<> waiting) noexcept {
                h.promise().continuation = waiting;
                return h;
            }
            int await_resume() noexcept { return h ? h.promise().value : 0; }
        };
        return awaiter{m_h};
    }

private:
    explicit move_only_task(std::coroutine_handle<promise_type> h) noexcept : m_h(h) {}
    std::coroutine_handle<promise_type> m_h;
};

move_only_task answer(int n) { co_return n; }

struct stresscoro_target {
    using object = move_only_task;
    static constexpr stresscoro::factory factories[] = {{"answer", 0, 9}};
    static object make(int, int n) { return answer(n); }
    static void resume(object& t) { t.resume(); }
    static constexpr bool awaitable = true;
};
