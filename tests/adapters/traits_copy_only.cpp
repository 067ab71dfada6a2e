// stresscoro: name=traits-copy-only
// stresscoro: summary=a copyable task whose move constructor and move assignment are deleted
//
// tests/test_user_library.py checks the op set the driver derives: copies and copy
// assignment, no move, no move assignment and no swap (std::swap needs moves), touch
// from the adapter. `T(T&&) = delete` makes `T(std::move(x))` ill-formed, so nothing
// may move one: make() returns the coroutine's prvalue, and the driver constructs the
// slot from it with guaranteed copy elision.
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <exception>
#include <utility>

class pinned_task {
public:
    struct promise_type {
        promise_type() noexcept {}
        pinned_task get_return_object() noexcept {
            return pinned_task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
        long owners = 1;
        int notes = 0;
    };

    pinned_task(const pinned_task& o) noexcept : m_h(o.m_h) { ++m_h.promise().owners; }
    pinned_task(pinned_task&&) = delete;
    pinned_task& operator=(const pinned_task& o) noexcept {
        pinned_task copy(o);  // copy first, so `a = a` keeps the frame alive
        std::swap(m_h, copy.m_h);
        return *this;
    }
    pinned_task& operator=(pinned_task&&) = delete;
    ~pinned_task() {
        if (--m_h.promise().owners == 0) m_h.destroy();
    }

    void note() noexcept { ++m_h.promise().notes; }

private:
    explicit pinned_task(std::coroutine_handle<promise_type> h) noexcept : m_h(h) {}
    std::coroutine_handle<promise_type> m_h;
};

pinned_task idle(int) { co_return; }

struct stresscoro_target {
    using object = pinned_task;
    static constexpr stresscoro::factory factories[] = {{"idle", 0, 9}};
    static object make(int, int n) { return idle(n); }  // a prvalue: never moved
    static void touch(object& t) { t.note(); }
};
