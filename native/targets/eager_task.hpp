// An eagerly started, move-only task: it runs as soon as it is made, up to its first
// pause, and a coroutine may await it afterwards. The flawed version frees its frame
// at final suspend when nobody is waiting yet, while the owner still holds the handle.
//
// The library is single-threaded: one thread makes, resumes, awaits and destroys. A
// task has one awaiter at a time (await a task once: a second awaiter displaces the
// first, which is then never resumed); an awaiter destroyed mid-wait unregisters.
#ifndef STRESSCORO_TARGETS_EAGER_TASK_HPP_INCLUDED
#define STRESSCORO_TARGETS_EAGER_TASK_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace stresscoro::targets {

enum class eager_flaw {
    none,
    frees_at_final,  // final suspend frees the frame if nobody awaits the task yet
};

template <eager_flaw Flaw = eager_flaw::none>
class eager_task {
public:
    struct promise_type;
    class awaiter;
    using handle_type = std::coroutine_handle<promise_type>;

    /// Kept by the task object, written by the frame: whether the frame freed itself.
    /// The owner reads it instead of the frame, which may be gone.
    struct frame_status {
        bool m_frame_gone = false;
    };

    struct final_awaiter {
        /// Flawed: "nobody waits, so nothing needs the frame any more": finish now, and
        /// the frame is freed under its owner.
        bool await_ready() const noexcept {
            if constexpr (Flaw == eager_flaw::frees_at_final) {
                return m_promise->m_waiter == nullptr;
            } else {
                return false;
            }
        }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            promise_type& p = h.promise();
            if (awaiter* w = std::exchange(p.m_waiter, nullptr)) {
                w->m_registered = false;
                return w->m_continuation;
            }
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}

        promise_type* m_promise;
    };

    /// `co_await pause()` inside an eager task: suspend until the owner resumes it.
    struct pause_awaiter {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept { h.promise().m_paused = true; }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept = default;
        ~promise_type() {
            if (m_status != nullptr) m_status->m_frame_gone = true;
            if (m_waiter != nullptr) m_waiter->m_registered = false;  // it is never resumed
        }
        eager_task get_return_object() { return eager_task{handle_type::from_promise(*this)}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() noexcept { return final_awaiter{this}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        int m_value = 0;
        bool m_paused = false;
        awaiter* m_waiter = nullptr;        // the coroutine awaiting this task, if any
        frame_status* m_status = nullptr;   // owned by the task object
    };

    /// The awaiter of `co_await t`; the task stays the owner. It lives in the awaiting
    /// frame for the whole wait, and unregisters if that frame is destroyed mid-wait.
    class awaiter {
    public:
        explicit awaiter(handle_type child) noexcept : m_child(child) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (m_registered) m_child.promise().m_waiter = nullptr;
        }

        bool await_ready() const noexcept { return !m_child || m_child.done(); }
        /// Register; a paused child is resumed at once by symmetric transfer.
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
            m_continuation = awaiting;
            m_registered = true;
            promise_type& p = m_child.promise();
            if (p.m_waiter != nullptr) p.m_waiter->m_registered = false;  // displaced: await_twice is a precondition
            p.m_waiter = this;
            if (!p.m_paused) return std::noop_coroutine();
            p.m_paused = false;
            return m_child;
        }
        int await_resume() const noexcept { return m_child ? m_child.promise().m_value : -1; }

    private:
        friend struct final_awaiter;
        friend struct promise_type;
        handle_type m_child;
        std::coroutine_handle<> m_continuation;
        bool m_registered = false;
    };

    eager_task() noexcept = default;
    eager_task(eager_task&& other) noexcept
        : m_handle(std::exchange(other.m_handle, {})), m_status(std::exchange(other.m_status, nullptr)) {}
    eager_task& operator=(eager_task&& other) noexcept {
        if (this != &other) {
            reset();
            m_handle = std::exchange(other.m_handle, {});
            m_status = std::exchange(other.m_status, nullptr);
        }
        return *this;
    }
    ~eager_task() { reset(); }

    /// Resume a task paused at one of its pause points; otherwise do nothing.
    void resume() {
        if (!alive() || m_handle.done() || !m_handle.promise().m_paused) return;
        m_handle.promise().m_paused = false;
        m_handle.resume();
    }

    /// Finished (or empty). Reads the status, never a frame that freed itself.
    bool done() const noexcept { return !alive() || m_handle.done(); }
    /// The finished task's result; -1 while it has none (or its frame is gone).
    int result() const noexcept { return alive() && m_handle.done() ? m_handle.promise().m_value : -1; }

    awaiter operator co_await() const noexcept { return awaiter{m_handle}; }

private:
    // Made by get_return_object, before the body runs: the status exists before the
    // frame could free itself.
    explicit eager_task(handle_type h) : m_handle(h), m_status(new frame_status) {
        h.promise().m_status = m_status;
    }

    bool alive() const noexcept { return m_handle && !m_status->m_frame_gone; }

    void reset() noexcept {
        if (alive()) m_handle.destroy();  // the promise's destructor marks the status
        delete m_status;
        m_handle = {};
        m_status = nullptr;
    }

    handle_type m_handle;
    frame_status* m_status = nullptr;
};

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_EAGER_TASK_HPP_INCLUDED
