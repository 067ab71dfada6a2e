// A move-only generator: each next() runs the body to its next co_yield.
#ifndef STRESSCORO_TARGETS_GENERATOR_HPP_INCLUDED
#define STRESSCORO_TARGETS_GENERATOR_HPP_INCLUDED

#include <coroutine>
#include <exception>
#include <utility>

namespace stresscoro::targets {

class generator {
public:
    struct promise_type {
        promise_type() noexcept = default;
        generator get_return_object() noexcept {
            return generator{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        std::suspend_always yield_value(int value) noexcept {
            m_current = value;
            return {};
        }
        void return_void() const noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }

        int m_current = 0;
    };
    using handle_type = std::coroutine_handle<promise_type>;

    explicit generator(handle_type h) noexcept : m_handle(h) {}
    generator(generator&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    generator& operator=(generator&& other) noexcept {
        if (this != &other) {
            if (m_handle) m_handle.destroy();
            m_handle = std::exchange(other.m_handle, {});
        }
        return *this;
    }
    ~generator() {
        if (m_handle) m_handle.destroy();
    }

    /// Advance to the next value; false once the body has finished (or when empty).
    bool next() {
        if (!m_handle || m_handle.done()) return false;
        m_handle.resume();
        return !m_handle.done();
    }
    int value() const noexcept { return m_handle.promise().m_current; }
    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }

private:
    handle_type m_handle;
};

/// Yields 0, 1, ..., count - 1.
inline generator iota(int count) {
    for (int i = 0; i < count; ++i) co_yield i;
}

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_GENERATOR_HPP_INCLUDED
