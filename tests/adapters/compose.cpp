// stresscoro: name=compose-test
// stresscoro: kind=task
// stresscoro: summary=test fixture: lazy tasks that await each other, a per-schedule scheduler, spawn, step
//
// COMPOSE_FLAW picks a seeded bug (0: none):
//   1  destroying a suspended parent leaves its continuation in the child
//   2  no drain: the adapter has no run_pending and end() forgets the frames still
//      queued in the scheduler (leak)
//   3  move assignment takes the source's frame without destroying its own (leak)
//   4  a finished task never resumes its continuation (lost)
//   5  a finished task resumes its continuation twice
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <deque>
#include <utility>
#include <type_traits>
#include <variant>

#ifndef COMPOSE_FLAW
#define COMPOSE_FLAW 0
#endif

namespace lib {

template <class T>
class task {
public:
    struct promise_type {
        std::coroutine_handle<> m_continuation = nullptr;
        std::coroutine_handle<promise_type> m_waiting_on = nullptr;  // the child it awaits
        bool m_started = false;
        T m_value{};
        task get_return_object() noexcept {
            return task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        auto initial_suspend() noexcept {
            struct start {
                promise_type* m_promise;
                bool await_ready() noexcept { return false; }
                void await_suspend(std::coroutine_handle<>) noexcept {}
                void await_resume() noexcept { m_promise->m_started = true; }
            };
            return start{this};
        }
        auto final_suspend() noexcept {
            struct to_continuation {
                bool await_ready() noexcept { return false; }
                std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                    auto c = h.promise().m_continuation;
#if COMPOSE_FLAW == 4
                    c = nullptr;
#elif COMPOSE_FLAW == 5
                    if (c) c.resume();
#endif
                    return c ? c : std::noop_coroutine();
                }
                void await_resume() noexcept {}
            };
            return to_continuation{};
        }
        void return_value(T v) noexcept { m_value = v; }
        void unhandled_exception() noexcept {}
    };
    using handle_type = std::coroutine_handle<promise_type>;

    explicit task(handle_type h) noexcept : m_handle(h) {}
    task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
#if COMPOSE_FLAW == 3
            m_handle = std::exchange(other.m_handle, {});
#else
            if (m_handle) m_handle.destroy();
            m_handle = std::exchange(other.m_handle, {});
#endif
        }
        return *this;
    }
    ~task() {
        if (m_handle) m_handle.destroy();
    }

    handle_type handle() const noexcept { return m_handle; }
    handle_type release() noexcept { return std::exchange(m_handle, {}); }
    bool started() const noexcept { return m_handle && m_handle.promise().m_started; }
    /// Drive the task: resume it, or the innermost task it is waiting for.
    void resume() {
        handle_type h = m_handle;
        while (h && h.promise().m_waiting_on) h = h.promise().m_waiting_on;
        if (h && !h.done()) h.resume();
    }

    struct awaiter {
        handle_type m_child;
        bool await_ready() noexcept { return !m_child || m_child.done(); }
        promise_type* m_parent = nullptr;
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
            if constexpr (std::is_same_v<P, promise_type>) {
                m_parent = &parent.promise();
                m_parent->m_waiting_on = m_child;
            }
            m_child.promise().m_continuation = parent;
            return m_child;
        }
        T await_resume() noexcept {
            if (m_parent) m_parent->m_waiting_on = nullptr;
            return m_child ? m_child.promise().m_value : T{};
        }
#if COMPOSE_FLAW != 1
        // The fix: a parent destroyed while suspended here takes its continuation back.
        ~awaiter() {
            if (m_child && !m_child.done()) m_child.promise().m_continuation = nullptr;
        }
#endif
    };
    awaiter operator co_await() & noexcept { return awaiter{m_handle}; }

private:
    handle_type m_handle;
};

/// Frames spawned onto it live here until they are run or the scheduler ends.
struct scheduler {
    std::deque<std::coroutine_handle<>> m_ready;
    ~scheduler() {
#if COMPOSE_FLAW != 2
        for (auto h : m_ready) h.destroy();
#endif
    }
    void spawn(std::coroutine_handle<> h) { m_ready.push_back(h); }
    void step() {
        if (m_ready.empty()) return;
        auto h = m_ready.front();
        m_ready.pop_front();
        if (!h.done()) h.resume();
        if (h.done()) {
            h.destroy();
        } else {
            m_ready.push_back(h);
        }
    }
};

}  // namespace lib

lib::task<int> countdown(int n) {
    int total = 0;
    for (int i = n; i > 0; --i) {
        total += i;
        co_await std::suspend_always{};
    }
    co_return total;
}

lib::task<int> await_it(lib::task<int>& child) { co_return 1 + co_await child; }

lib::task<int> add(lib::task<int>& a, lib::task<int>& b) {
    int x = co_await a;
    co_return x + co_await b;
}

struct stresscoro_target {
    using object = stresscoro::one_of<lib::task<int>>;
    static inline lib::scheduler* s_loop = nullptr;

    static constexpr stresscoro::factory factories[] = {{"countdown", 0, 3}};
    static object make(int, int n) { return countdown(n); }

    static constexpr stresscoro::combinator combinators[] = {
        {"await_it", {stresscoro::pass::ref}, 0, 0},
        {"add", {stresscoro::pass::ref, stresscoro::pass::ref}, 0, 0},
    };
    static object combine(int which, int, stresscoro::inputs<object> in) {
        auto& a = in[0].get<lib::task<int>>();
        if (which == 0) return await_it(a);
        return add(a, in[1].get<lib::task<int>>());
    }

    static constexpr stresscoro::custom_op ops[] = {
        {"spawn", {stresscoro::pass::consume}, 0, 0},
    };
    static void apply(int, int, stresscoro::inputs<object> in) {
        auto& t = in[0].get<lib::task<int>>();
        if (t.started()) {
            lib::task<int> gone = std::move(t);  // only a fresh task can be spawned
        } else {
            s_loop->spawn(t.release());
        }
    }

    static void begin() { s_loop = new lib::scheduler; }
    static void step() { s_loop->step(); }
#if COMPOSE_FLAW != 2
    static void run_pending() {
        while (!s_loop->m_ready.empty()) s_loop->step();
    }
#endif
    static void end() {
        delete s_loop;
        s_loop = nullptr;
    }

    static void resume(object& o) { o.visit([](auto& t) { t.resume(); }); }
    static std::coroutine_handle<> handle(const object& o) {
        return o.visit([](const auto& t) -> std::coroutine_handle<> { return t.handle(); });
    }
};
