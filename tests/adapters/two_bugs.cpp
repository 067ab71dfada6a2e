// stresscoro: name=two-bugs
// stresscoro: kind=task
// stresscoro: sanitizers=asan
// stresscoro: summary=test-only: two independent seeded bugs, a copy that shares the frame and a parameter view that dangles
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

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
    task(const task& other) noexcept : m_handle(other.m_handle) {}  // bug 1: both copies own the frame
    task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
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

task value(int v) { co_return v; }

// Bug 2: the frame keeps a view of the caller's string, read at the first resume.
task count_a(std::string_view text) {
    int n = 0;
    for (char c : text) n += c == 'a';
    co_return n;
}

struct stresscoro_target {
    using object = task;
    static constexpr stresscoro::factory factories[] = {{"value", 0, 9}, {"count_a", 0, 16}};
    static object make(int f, int arg) {
        if (f == 0) return value(arg);
        std::string text(static_cast<std::size_t>(arg) + 24, 'a');
        return count_a(text);
    }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.handle(); }
};
