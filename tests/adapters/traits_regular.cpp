// stresscoro: name=traits-regular
// stresscoro: summary=a reference-counted task with copies, moves and both assignments
//
// tests/test_user_library.py checks the op set the driver derives: every copy, move,
// assignment and swap op from the type; no resume, touch or await, since the adapter
// declares none of them.
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <exception>
#include <utility>

class shared_idle {
public:
    struct promise_type {
        promise_type() noexcept {}
        shared_idle get_return_object() noexcept {
            return shared_idle{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
        long owners = 1;
    };

    shared_idle(const shared_idle& o) noexcept : m_h(o.m_h) {
        if (m_h) ++m_h.promise().owners;
    }
    shared_idle(shared_idle&& o) noexcept : m_h(std::exchange(o.m_h, {})) {}
    shared_idle& operator=(shared_idle o) noexcept {  // by value: copy or move, then swap
        std::swap(m_h, o.m_h);
        return *this;
    }
    ~shared_idle() {
        if (m_h && --m_h.promise().owners == 0) m_h.destroy();
    }

private:
    explicit shared_idle(std::coroutine_handle<promise_type> h) noexcept : m_h(h) {}
    std::coroutine_handle<promise_type> m_h;
};

shared_idle idle(int) { co_return; }

struct stresscoro_target {
    using object = shared_idle;
    static constexpr stresscoro::factory factories[] = {{"idle", 0, 9}};
    static object make(int, int n) { return idle(n); }
};
