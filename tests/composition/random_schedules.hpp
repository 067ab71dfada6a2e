// An independent random-schedule checker for the composition libraries: no driver, no
// Python, only the adapter form. Include an adapter .cpp, then this file; the program
// runs N random schedules (argv[1]) and exits 0 only if every one is clean under ASan
// and frees everything it allocated.
//
// Ops: make, make_from (inputs taken as each combinator declares: a moved-from source is
// only dropped or assigned to afterwards), move, move_assign, swap (self swap only where
// the rules allow it), drop, resume, probe (a real coroutine of its own type does
// `co_await obj` and keeps its awaiter until it is dropped; each object awaited at most
// once by a probe; a combinator may await it again, which single-awaiter libraries
// must survive), custom op 0 and step(); begin() before, run_pending(), the drops (probes
// first, then slots, newest slot index first) and end() after. Allocations are counted
// per schedule, as stresscoro does.
#include <stresscoro/adapter.hpp>

#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <optional>
#include <random>
#include <utility>

namespace {
long g_live_blocks = 0;
}

void* operator new(std::size_t n) {
    void* p = std::malloc(n ? n : 1);
    if (p == nullptr) throw std::bad_alloc();
    ++g_live_blocks;
    return p;
}
void operator delete(void* p) noexcept {
    if (p != nullptr) --g_live_blocks;
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace random_schedules {

/// A coroutine that awaits one object and stays suspended after it.
struct probe {
    struct promise_type {
        probe get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() { std::terminate(); }
    };
    std::coroutine_handle<promise_type> m_handle;
};

template <class T>
probe await_once(T& obj) {
    co_await obj;
}

template <class A>
class runner {
public:
    explicit runner(unsigned seed) : m_rng(seed) {}

    bool run(int length) {
        const long before = g_live_blocks;
        if constexpr (stresscoro::detail::has_begin<A>) A::begin();
        for (int i = 0; i < length; ++i) one_op();
        if constexpr (stresscoro::detail::has_run_pending<A>) A::run_pending();
        for (int s = slots - 1; s >= 0; --s) {
            if (m_probes[s]) m_probes[s].destroy();
        }
        for (int s = slots - 1; s >= 0; --s) m_slot[s].reset();
        if constexpr (stresscoro::detail::has_end<A>) A::end();
        if (g_live_blocks != before) {
            std::printf("leak: %ld block(s) after:%s\n", g_live_blocks - before, m_log);
            return false;
        }
        return true;
    }

private:
    using object = typename A::object;
    static constexpr int slots = 6;
    static constexpr stresscoro::rules rules = stresscoro::detail::rules_of<A>();

    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(m_rng); }
    bool usable(int s) const { return m_slot[s] && !m_moved[s]; }

    void note(const char* what, int a, int b = -1) {
        m_used += std::snprintf(m_log + m_used, sizeof m_log - m_used, " %s(%d,%d)", what, a, b);
    }

    void place(int s, object&& o, bool awaited) {
        m_slot[s].reset();
        m_slot[s].emplace(std::move(o));
        m_moved[s] = false;
        m_awaited[s] = awaited;
    }

    void one_op() {
        const int a = pick(slots), b = pick(slots);
        switch (pick(10)) {
            case 0: {
                constexpr int n = sizeof(A::factories) / sizeof(A::factories[0]);
                const auto& f = A::factories[pick(n)];
                note("make", a, static_cast<int>(&f - A::factories));
                place(a, A::make(static_cast<int>(&f - A::factories), f.arg_min + pick(f.arg_max - f.arg_min + 1)), false);
                break;
            }
            case 1:
                if constexpr (stresscoro::detail::has_combinators<A>) combine(a);
                break;
            case 2:
                if (usable(a) && a != b) {
                    note("move", a, b);
                    place(b, std::move(*m_slot[a]), m_awaited[a]);
                    m_moved[a] = true;
                }
                break;
            case 3:
                if (usable(a) && m_slot[b] && a != b) {
                    note("move_assign", a, b);
                    *m_slot[b] = std::move(*m_slot[a]);
                    m_moved[b] = false;
                    m_awaited[b] = m_awaited[a];
                    m_moved[a] = true;
                }
                break;
            case 4:
                if (usable(a) && usable(b) && (a != b || rules.self_swap)) {
                    note("swap", a, b);
                    using std::swap;
                    swap(*m_slot[a], *m_slot[b]);
                    std::swap(m_awaited[a], m_awaited[b]);
                }
                break;
            case 5:
                note("drop", a);
                m_slot[a].reset();
                break;
            case 6:
                if constexpr (stresscoro::detail::has_resume<A>) {
                    if (usable(a)) {
                        note("resume", a);
                        A::resume(*m_slot[a]);
                    }
                }
                break;
            case 7:
                if constexpr (stresscoro::awaitable_from<object, std::coroutine_handle<>>) {
                    if (usable(a) && !m_awaited[a]) {
                        note("probe", b, a);
                        if (m_probes[b]) m_probes[b].destroy();
                        m_probes[b] = await_once(*m_slot[a]).m_handle;
                        m_awaited[a] = true;
                    }
                }
                break;
            case 8:
                if (m_probes[a]) {
                    note("drop_probe", a);
                    m_probes[a].destroy();
                    m_probes[a] = {};
                }
                break;
            default:
                if constexpr (stresscoro::detail::has_step<A>) {
                    if (pick(2) == 0) {
                        note("step", -1);
                        A::step();
                        break;
                    }
                }
                if constexpr (stresscoro::detail::has_custom_ops<A>) {
                    if (usable(a)) {
                        note("call", a);
                        A::apply(0, A::ops[0].arg_min, stresscoro::inputs<object>(&*m_slot[a], nullptr, 1));
                        if (A::ops[0].in[0] == stresscoro::pass::consume) m_slot[a].reset();
                    }
                }
                break;
        }
    }

    void combine(int dst) {
        constexpr int n = sizeof(A::combinators) / sizeof(A::combinators[0]);
        const int which = pick(n);
        const stresscoro::combinator& c = A::combinators[which];
        const int count = c.in[1] == stresscoro::pass::none ? 1 : 2;
        const int src[2] = {pick(slots), pick(slots)};
        if (count == 2 && src[0] == src[1]) return;
        for (int i = 0; i < count; ++i) {
            if (!usable(src[i]) || src[i] == dst) return;
        }
        note("make_from", dst, which);
        object made = A::combine(which, c.arg_min,
                                 stresscoro::inputs<object>(&*m_slot[src[0]], count == 2 ? &*m_slot[src[1]] : nullptr, count));
        for (int i = 0; i < count; ++i) {
            if (c.in[i] == stresscoro::pass::move) m_moved[src[i]] = true;
            if (c.in[i] == stresscoro::pass::consume) m_slot[src[i]].reset();
        }
        place(dst, std::move(made), false);
    }

    std::mt19937 m_rng;
    std::optional<object> m_slot[slots];
    bool m_moved[slots] = {};
    bool m_awaited[slots] = {};
    std::coroutine_handle<> m_probes[slots] = {};
    char m_log[16384] = {};
    std::size_t m_used = 0;
};

}  // namespace random_schedules

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
    for (int i = 0; i < n; ++i) {
        random_schedules::runner<stresscoro_target> r(static_cast<unsigned>(i));
        if (!r.run(3 + i % 25)) return 1;
    }
    std::printf("clean: %d schedules\n", n);
    return 0;
}
