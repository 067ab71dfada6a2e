// stresscoro: name=misbehave
// stresscoro: kind=other
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=test-only: a task whose first resume misbehaves as its factory says
//
// A test-only target for the worker supervision tests (tests/test_workers.py). Each
// factory makes a lazily started, move-only task; resuming it does one thing to the
// worker process: nothing, a null write, abort(), std::terminate() (via a throw out of
// a noexcept function), an endless spin, or an endless appetite for memory. The
// factory "throws" throws and catches an exception: a correct program that must run
// clean (under ASan that needs the C++ runtime preloaded with the sanitizer's). The
// last, "assertion", fails an assert() (SIGABRT with no sanitizer report).
#include <stresscoro/adapter.hpp>

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>

namespace misbehave {

enum class what : int { fine = 0, segfault = 1, abort = 2, terminate = 3, hang = 4, hog = 5, throws = 6, assertion = 7 };

/// The smallest owning task: lazily started, move-only, destroys its frame once.
class task {
public:
    struct promise_type {
        promise_type() noexcept = default;
        task get_return_object() noexcept {
            return task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); }
    };
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : m_handle(h) {}
    task(task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            reset();
            m_handle = std::exchange(other.m_handle, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() { reset(); }

    void resume() {
        if (m_handle && !m_handle.done()) m_handle.resume();
    }
    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }

private:
    void reset() noexcept {
        if (m_handle) std::exchange(m_handle, {}).destroy();
    }
    handle_type m_handle;
};

// Escape hatches the optimiser must respect.
inline int* volatile g_null = nullptr;
inline volatile bool g_forever = true;
inline void* volatile g_sink = nullptr;

[[noreturn]] inline void throw_from(int) { throw std::runtime_error("misbehave: terminate"); }
// Throwing out of a noexcept function calls std::terminate.
inline void noexcept_thrower(int x) noexcept { throw_from(x); }

inline void segfault() { *g_null = 42; }

inline void spin() {
    while (g_forever) {
    }
}

/// Allocate and touch 64 MiB at a time. Bounded by a ceiling far above any sane
/// memory cap: if supervision fails, the run turns into a hang instead of taking
/// the machine down.
inline void hog() {
    constexpr std::size_t chunk = std::size_t{64} << 20;
    constexpr std::size_t ceiling = std::size_t{6} << 30;
    for (std::size_t total = 0; total < ceiling; total += chunk) {
        void* p = std::malloc(chunk);
        if (p == nullptr) break;
        std::memset(p, 0x5a, chunk);
        g_sink = p;  // keep it reachable: never freed, never elided
        asm volatile("" : : "r"(p) : "memory");
    }
    spin();
}

inline task misbehaving(what w) {
    switch (w) {
        case what::fine:
            break;
        case what::segfault:
            segfault();
            break;
        case what::abort:
            std::abort();
        case what::terminate:
            noexcept_thrower(static_cast<int>(w));
            break;
        case what::hang:
            spin();
            break;
        case what::hog:
            hog();
            break;
        case what::throws:
            try {
                throw_from(static_cast<int>(w));
            } catch (const std::runtime_error&) {
            }
            break;
        case what::assertion:
            assert(!g_forever && "misbehave: assertion");
            break;
    }
    co_return;
}

}  // namespace misbehave

struct stresscoro_target {
    using object = misbehave::task;
    static constexpr stresscoro::factory factories[] = {
        {"fine", 0, 0},      {"segfault", 0, 0}, {"abort", 0, 0},
        {"terminate", 0, 0}, {"hang", 0, 0},     {"hog", 0, 0},
        {"throws", 0, 0},    {"assertion", 0, 0},
    };
    static object make(int f, int) { return misbehave::misbehaving(static_cast<misbehave::what>(f)); }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
};
