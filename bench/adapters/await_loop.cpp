// stresscoro: name=await-loop
// stresscoro: kind=task
// stresscoro: sanitizers=asan,none
// stresscoro: summary=bench-only: one resume runs 2^arg - 1 synchronous awaits, each a frame allocation
//
// A correct, allocation-heavy op for bench/alloc.py: resuming the task awaits a fresh
// child task in a loop. A child starts eagerly and finishes at once, so the await
// completes synchronously (await_ready) and the stack stays flat at any -O level;
// every child frame is allocated and freed, one allocation per await.
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <utility>

namespace await_loop {

struct eager {};

class task {
public:
    struct promise_type {
        std::coroutine_handle<> m_continuation = std::noop_coroutine();
        task get_return_object() noexcept {
            return task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        bool m_eager = false;
        promise_type() noexcept = default;
        explicit promise_type(eager) noexcept : m_eager(true) {}
        struct initial_awaiter {
            bool eager;
            bool await_ready() const noexcept { return eager; }
            void await_suspend(std::coroutine_handle<>) const noexcept {}
            void await_resume() const noexcept {}
        };
        initial_awaiter initial_suspend() const noexcept { return {m_eager}; }
        struct final_awaiter {
            bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                return h.promise().m_continuation;
            }
            void await_resume() const noexcept {}
        };
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept {}
    };
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : m_handle(h) {}
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

    bool await_ready() const noexcept { return m_handle.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        m_handle.promise().m_continuation = awaiting;
        return m_handle;
    }
    void await_resume() const noexcept {}

    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }

private:
    handle_type m_handle;
};

inline task leaf(eager) { co_return; }

inline task loop(long n) {
    for (long i = 0; i < n; ++i) co_await leaf(eager{});
}

}  // namespace await_loop

struct stresscoro_target {
    using object = await_loop::task;
    static constexpr stresscoro::factory factories[] = {{"loop", 0, 24}};
    static object make(int, int arg) { return await_loop::loop((1L << arg) - 1); }
    static void resume(object& t) { t.resume(); }
};
