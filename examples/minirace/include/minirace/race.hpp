// minirace: shared, lazily started jobs and when_any, a race between two of them.
//
// A job<T> is reference-counted: copies share one coroutine frame and the last owner
// frees it. resume() runs it to its next `co_await minirace::pause{}` or its end.
// when_any(a, b) is a job that starts racing as soon as it is made: it keeps a copy of
// both jobs, starts them, and finishes with the value of whichever finishes first.
//
// A race registers a listener with each job it watches; the listener lives in the
// race's own frame. -DMINIRACE_FIXED=1 builds the version that takes the listener back
// when the race is over or abandoned.
//
// Single-threaded: jobs and races live on one thread.
#ifndef MINIRACE_RACE_HPP_INCLUDED
#define MINIRACE_RACE_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace minirace {

template <class T>
class job;

/// Told when a watched job finishes.
struct listener {
    virtual void finished(int which) noexcept = 0;

protected:
    ~listener() = default;
};

struct pause {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    void await_resume() const noexcept {}
};

template <class T>
class job {
public:
    struct promise_type {
        promise_type() noexcept {}
        job get_return_object() noexcept { return job{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        auto final_suspend() const noexcept {
            struct tell_listener {
                bool await_ready() const noexcept { return false; }
                void await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
                    promise_type& p = h.promise();
                    if (listener* l = std::exchange(p.m_listener, nullptr)) l->finished(p.m_lane);
                }
                void await_resume() const noexcept {}
            };
            return tell_listener{};
        }
        void return_value(T value) { m_result = std::move(value); }
        void unhandled_exception() noexcept { std::terminate(); }

        long m_owners = 1;
        std::optional<T> m_result;
        listener* m_listener = nullptr;
        int m_lane = 0;
    };
    using handle_type = std::coroutine_handle<promise_type>;

    job(const job& other) noexcept : m_handle(other.m_handle) {
        if (m_handle) ++m_handle.promise().m_owners;
    }
    job(job&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    job& operator=(job other) noexcept {
        std::swap(m_handle, other.m_handle);
        return *this;
    }
    ~job() {
        if (m_handle && --m_handle.promise().m_owners == 0) m_handle.destroy();
    }

    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }
    bool done() const noexcept { return !m_handle || m_handle.done(); }
    const std::optional<T>& result() const noexcept { return m_handle.promise().m_result; }

    /// Watch this job: `l` is told when it finishes (one listener at a time).
    void listen(listener* l, int lane) noexcept {
        m_handle.promise().m_listener = l;
        m_handle.promise().m_lane = lane;
    }
    /// Stop watching, if `l` still is.
    void unlisten(listener* l) noexcept {
        if (m_handle && m_handle.promise().m_listener == l) m_handle.promise().m_listener = nullptr;
    }

private:
    explicit job(handle_type h) noexcept : m_handle(h) {}
    handle_type m_handle;
};

namespace detail {

/// The awaiter of a race: listens to both jobs and resumes the racer at the first end.
template <class T>
class race final : public listener {
public:
    race(job<T>& a, job<T>& b) noexcept : m_jobs{&a, &b} {}
    race(const race&) = delete;
    race& operator=(const race&) = delete;
#if MINIRACE_FIXED
    ~race() {
        for (job<T>* j : m_jobs) j->unlisten(this);
    }
#endif

    bool await_ready() const noexcept { return m_jobs[0]->done() || m_jobs[1]->done(); }
    void await_suspend(std::coroutine_handle<> racer) {
        m_racer = racer;
        job<T>* first = m_jobs[0];
        job<T>* second = m_jobs[1];
        first->listen(this, 0);
        second->listen(this, 1);
        // A job that finishes here resumes the racer at once, which may end the race
        // and this awaiter with it: from here on, only the jobs (the racer's copies).
        first->resume();
        if (!first->done()) second->resume();
    }
    T await_resume() {
        const int w = m_winner >= 0 ? m_winner : (m_jobs[0]->done() ? 0 : 1);
        return *m_jobs[w]->result();
    }

    void finished(int which) noexcept override {
        if (m_winner >= 0) return;  // the race is decided
        m_winner = which;
        m_racer.resume();
    }

private:
    job<T>* m_jobs[2];
    std::coroutine_handle<> m_racer;
    int m_winner = -1;
};

template <class T>
job<T> race_job(job<T> a, job<T> b) {
    co_return co_await race<T>(a, b);
}

}  // namespace detail

/// A job that finishes with the value of whichever of `a` and `b` finishes first. It
/// starts racing at once; both jobs may still be resumed through other copies.
template <class T>
job<T> when_any(job<T> a, job<T> b) {
    job<T> j = detail::race_job(std::move(a), std::move(b));
    j.resume();
    return j;
}

}  // namespace minirace

#endif  // MINIRACE_RACE_HPP_INCLUDED
