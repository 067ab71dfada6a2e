// stresscoro: name=locked-count-test
// stresscoro: kind=shared_task
// stresscoro: summary=test fixture: a shared task whose count is guarded by a std::mutex
//
// Correct: every change of the count holds the lock, and the owner that takes it to
// zero destroys the frame after letting the lock go. A preemption right after lock()
// leaves the lock held while another schedule thread runs (tests/test_interleave.py).
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <mutex>
#include <utility>

namespace locked {

class shared {
public:
    struct promise_type {
        promise_type() noexcept {}
        std::mutex m_lock;
        long m_count = 1;  // guarded by m_lock
        shared get_return_object() {
            return shared(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept {}
    };

    explicit shared(std::coroutine_handle<promise_type> h) noexcept : m_h(h) {}
    shared(const shared& other) noexcept : m_h(other.m_h) {
        std::lock_guard<std::mutex> hold(m_h.promise().m_lock);
        ++m_h.promise().m_count;
    }
    shared& operator=(const shared&) = delete;
    ~shared() {
        bool last = false;
        {
            std::lock_guard<std::mutex> hold(m_h.promise().m_lock);
            last = --m_h.promise().m_count == 0;
        }
        if (last) m_h.destroy();
    }

private:
    std::coroutine_handle<promise_type> m_h;
};

inline shared work() { co_return; }

}  // namespace locked

struct stresscoro_target {
    using object = locked::shared;
    static constexpr stresscoro::factory factories[] = {{"work", 0, 0}};
    static object make(int, int) { return locked::work(); }
    static constexpr stresscoro::rules ownership = {.copies_dropped_across_threads = true};
};
