// twobugs::lazy<T>: a lazily started, owning coroutine task with two seeded bugs, each in
// its own member and each fixed by its own switch, so that a crash report of one bug can
// be told from the other's. Both bugs end in a second destroy of the same frame, read by
// the same destructor: the faulting access is identical, only who freed the frame first
// differs.
//   TWOBUGS_FIX_COPY=1   the copy constructor is deleted (bug 1: a copy shares the frame)
//   TWOBUGS_FIX_FINAL=1  the frame stays suspended at the end (bug 2: it frees itself at
//                        final suspend, and the owner destroys it again)
#ifndef TWOBUGS_LAZY_HPP_INCLUDED
#define TWOBUGS_LAZY_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

#ifndef TWOBUGS_FIX_COPY
#define TWOBUGS_FIX_COPY 0
#endif
#ifndef TWOBUGS_FIX_FINAL
#define TWOBUGS_FIX_FINAL 0
#endif

namespace twobugs {

template <typename T>
class lazy {
public:
    struct promise_type {
        lazy get_return_object() noexcept {
            return lazy{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
#if TWOBUGS_FIX_FINAL
        std::suspend_always final_suspend() const noexcept { return {}; }
#else
        std::suspend_never final_suspend() const noexcept { return {}; }  // bug 2
#endif
        void return_value(T value) noexcept { m_value = std::move(value); }
        void unhandled_exception() noexcept { std::terminate(); }

        T m_value{};
    };
    using handle_type = std::coroutine_handle<promise_type>;

    explicit lazy(handle_type h) noexcept : m_frame(h) {}
#if TWOBUGS_FIX_COPY
    lazy(const lazy&) = delete;
#else
    lazy(const lazy& other) noexcept : m_frame(other.m_frame) {}  // bug 1: two owners
#endif
    lazy(lazy&& other) noexcept : m_frame(std::exchange(other.m_frame, {})) {}
    lazy& operator=(const lazy&) = delete;
    lazy& operator=(lazy&&) = delete;
    ~lazy() { discard(); }

    /// Run the body up to its next suspension point; does nothing once it has finished.
    void start() {
        if (m_frame && !m_frame.done()) m_frame.resume();
    }
    handle_type frame() const noexcept { return m_frame; }

private:
    void discard() noexcept {
        if (m_frame) m_frame.destroy();
        m_frame = {};
    }

    handle_type m_frame;
};

}  // namespace twobugs

#endif  // TWOBUGS_LAZY_HPP_INCLUDED
