// Support for the standalone C++ reproducers stresscoro writes: run a schedule's body
// the way the driver does (on a thread with the adapter's stack size), and nothing more.
#ifndef STRESSCORO_REPLAY_HPP_INCLUDED
#define STRESSCORO_REPLAY_HPP_INCLUDED

#include <stresscoro/preempt.hpp>
#include <stresscoro/adapter.hpp>
#include <stresscoro/probe.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <coroutine>
#include <functional>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace stresscoro::replay {

/// One object slot of a reproducer: std::optional's emplace, reset and *, plus
/// emplace_from(make), which constructs the object from make()'s prvalue in place
/// (guaranteed copy elision), as the driver does: a type whose move constructor is
/// deleted can be made too, where optional::emplace(make()) would need that move.
template <class T>
class slot {
public:
    slot() noexcept = default;
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    ~slot() { reset(); }

    template <class F>
    T& emplace_from(F make) {
        reset();
        ::new (static_cast<void*>(m_bytes)) T(make());
        m_live = true;
        return **this;
    }
    template <class... Args>
    T& emplace(Args&&... args) {
        return emplace_from([&]() -> T { return T(std::forward<Args>(args)...); });
    }
    void reset() {
        if (m_live) {
            m_live = false;
            (**this).~T();
        }
    }
    T& operator*() noexcept { return *std::launder(reinterpret_cast<T*>(m_bytes)); }
    T* get() noexcept { return m_live ? &**this : nullptr; }
    bool live() const noexcept { return m_live; }

private:
    alignas(T) unsigned char m_bytes[sizeof(T)];
    bool m_live = false;
};

/// Where a reproducer's continuation checks report: the first broken invariant, in
/// the words of stresscoro's findings, printed as "stresscoro invariant: <name>".
inline int& broken_invariants() {
    static int count = 0;
    return count;
}
inline void report_invariant(const char* name, const char* detail) {
    std::fprintf(stderr, "stresscoro invariant: %s (%s)\n", name, detail);
    ++broken_invariants();
}

/// A slot holding a probe: a synthetic awaiting coroutine, freed by reset(), as the
/// driver's `probe` op keeps one. On reset it checks what the probe saw.
template <class A>
class probe_slot {
public:
    probe_slot() noexcept = default;
    probe_slot(const probe_slot&) = delete;
    probe_slot& operator=(const probe_slot&) = delete;
    ~probe_slot() { reset(); }

    void await_on(typename A::object& value, int id) {
        reset();
        void* child = nullptr;
        if constexpr (stresscoro::detail::has_handle<A>) child = A::handle(value).address();
        constexpr bool rvalue = !stresscoro::detail::rules_of<A>().await_lvalue;
        m_probe = await_in_new_probe<rvalue>(value, id, id);
        m_probe->m_child = child;
    }
    void reset() {
        if (m_probe == nullptr) return;
        check_counts();
        free_probe(std::exchange(m_probe, nullptr));
    }
    const probe_frame* get() const noexcept { return m_probe; }

private:
    void check_counts() const {
        if (m_probe->m_resumes > 1) report_invariant("continuation-resumed-twice", "a probe was resumed more than once");
        if (m_probe->m_destroys > 0) report_invariant("probe-destroyed", "the library destroyed a probe it does not own");
    }
    probe_frame* m_probe = nullptr;
};

/// The end-of-schedule continuation check: a probe never resumed whose awaited object
/// (still owned by a live slot) finished lost its continuation.
template <class A, class... Slots>
void check_lost(const probe_frame* probe, Slots&... objects) {
    if constexpr (stresscoro::detail::has_handle<A>) {
        if (probe == nullptr || probe->m_resumes > 0 || probe->m_child == nullptr) return;
        bool lost = false;
        auto look = [&](auto& s) {
            if (!s.live() || lost) return;
            std::coroutine_handle<> h = A::handle(*s);
            lost = h && h.address() == probe->m_child && h.done();
        };
        (look(objects), ...);
        if (lost) report_invariant("continuation-lost", "the awaited object finished, the probe was never resumed");
    }
}

/// The adapter's lifecycle hooks, where it declares them.
template <class A>
void begin() {
    if constexpr (stresscoro::detail::has_begin<A>) A::begin();
}
template <class A>
void run_pending() {
    if constexpr (stresscoro::detail::has_run_pending<A>) A::run_pending();
}
template <class A>
void end() {
    if constexpr (stresscoro::detail::has_end<A>) A::end();
}

/// Run `body` on a fresh thread whose stack is the adapter's stack_bytes, and wait.
template <class A, class F>
void run_on_stack(F body) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, detail::stack_bytes<A>());
    pthread_t thread;
    auto trampoline = [](void* arg) -> void* {
        (*static_cast<F*>(arg))();
        return nullptr;
    };
    if (pthread_create(&thread, &attr, trampoline, &body) != 0) {
        std::perror("pthread_create");
        std::exit(2);
    }
    pthread_attr_destroy(&attr);
    pthread_join(thread, nullptr);
}

/// Runs a cross-thread schedule's threads turn by turn, exactly as the driver does:
/// each thread runs its ops in the schedule's order, the CPU passing in that order
/// through a word ThreadSanitizer never sees as an edge; `send` is the only hand-off,
/// through a mutex-guarded mailbox that the receiver locks at the start of each of its
/// turns. A preemption (op, after, to), one that took effect when stresscoro ran the
/// schedule, hands the CPU to thread `to` right after op's `after`-th sync point
/// (stresscoro/preempt.hpp), as the driver did; `to` runs its next op, then the
/// schedule's order goes on. Items are the driver's: op i is item i, thread t's end of
/// schedule is item ops + t.
class turns {
public:
    turns(int threads, std::vector<int> owners, std::vector<int> preemptions = {})
        : m_threads(threads), m_owners(std::move(owners)), m_preempt(std::move(preemptions)) {
        for (int t = 0; t < m_threads; ++t) m_next[t] = next_item_of(t, -1);
        set(m_running, pick_default());
        for (auto& m : m_mail) pthread_mutex_init(&m, nullptr);
        s_current = this;
        if (!m_preempt.empty()) (__atomic_store_n)(&detail::g_sync_hooks, &s_hooks, __ATOMIC_RELAXED);
    }
    ~turns() { (__atomic_store_n)(&detail::g_sync_hooks, static_cast<detail::sync_hooks*>(nullptr), __ATOMIC_RELAXED); }

    /// Wait until this thread holds the CPU for item `item`, then collect its mail.
    void begin(int item, int thread) {
        t_thread = thread;
        wait_for(thread);
        m_points[thread] = 0;
        m_in_item[thread] = true;
        (pthread_mutex_lock)(&m_mail[thread]);
        (pthread_mutex_unlock)(&m_mail[thread]);
        (void)item;
    }
    /// Item done: the CPU goes on in the schedule's order.
    void end(int item) {
        const int me = t_thread;
        m_in_item[me] = false;
        m_next[me] = next_item_of(me, item);
        set(m_running, pick_default());
    }

    /// Hand an object to thread `to`.
    void send(int to) {
        (pthread_mutex_lock)(&m_mail[to]);
        (pthread_mutex_unlock)(&m_mail[to]);
    }

    /// Start one thread per body, each on the adapter's stack size, and join them all.
    template <class A>
    void run(std::vector<std::function<void()>> bodies) {
        std::vector<pthread_t> threads(bodies.size());
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, detail::stack_bytes<A>());
        auto trampoline = [](void* arg) -> void* {
            (*static_cast<std::function<void()>*>(arg))();
            return nullptr;
        };
        for (std::size_t t = 0; t < bodies.size(); ++t) {
            if (pthread_create(&threads[t], &attr, trampoline, &bodies[t]) != 0) {
                std::perror("pthread_create");
                std::exit(2);
            }
        }
        pthread_attr_destroy(&attr);
        for (pthread_t& t : threads) pthread_join(t, nullptr);
    }

private:
    static constexpr int no_item = 1 << 30;
    static constexpr int spin_points = 4096;  // as the driver's: a spinning thread gives way

    // The scheduler's words: only the thread holding the CPU touches them, and the CPU
    // passes through m_running, a relaxed atomic with fences (no edge for TSan).
    [[gnu::no_sanitize_thread]] static int get(const int& w) {
        const int v = (__atomic_load_n)(&w, __ATOMIC_RELAXED);
        (__atomic_thread_fence)(__ATOMIC_ACQUIRE);
        return v;
    }
    [[gnu::no_sanitize_thread]] static void set(int& w, int v) {
        (__atomic_thread_fence)(__ATOMIC_RELEASE);
        (__atomic_store_n)(&w, v, __ATOMIC_RELAXED);
        (__atomic_thread_fence)(__ATOMIC_SEQ_CST);
    }
    [[gnu::no_sanitize_thread]] void wait_for(int me) const {
        while (get(m_running) != me) sched_yield();
    }
    int ops() const { return static_cast<int>(m_owners.size()); }
    int next_item_of(int t, int after) const {
        for (int i = after + 1; i < ops(); ++i) {
            if (m_owners[i] == t) return i;
        }
        return after < ops() + t ? ops() + t : no_item;
    }
    [[gnu::no_sanitize_thread]] int pick_default() const {
        int best = m_threads, best_item = no_item;
        for (int t = 0; t < m_threads; ++t) {
            if (m_next[t] < best_item) {
                best_item = m_next[t];
                best = t;
            }
        }
        return best;
    }
    [[gnu::no_sanitize_thread]] int other_in_item(int me) const {
        int best = -1, best_item = no_item;
        for (int t = 0; t < m_threads; ++t) {
            if (t != me && m_in_item[t] && m_next[t] < best_item) {
                best_item = m_next[t];
                best = t;
            }
        }
        return best;
    }
    [[gnu::no_sanitize_thread]] void hand_over(int me, int to) {
        set(m_running, to);
        wait_for(me);
    }
    [[gnu::no_sanitize_thread]] static void on_point(int, void*) {
        turns& self = *s_current;
        const int me = t_thread;
        if (me < 0 || !self.m_in_item[me]) return;
        const int item = self.m_next[me];
        const int point = ++self.m_points[me];
        for (std::size_t p = 0; p + 2 < self.m_preempt.size(); p += 3) {
            const int to = self.m_preempt[p + 2];
            if (self.m_preempt[p] == item && self.m_preempt[p + 1] == point && to != me &&
                self.m_next[to] != no_item) {
                return self.hand_over(me, to);
            }
        }
        if (point % spin_points == 0) {
            const int holder = self.other_in_item(me);
            if (holder >= 0) self.hand_over(me, holder);
        }
    }
    [[gnu::no_sanitize_thread]] static bool on_blocked() {
        turns& self = *s_current;
        const int me = t_thread;
        if (me < 0 || !self.m_in_item[me]) return false;
        const int holder = self.other_in_item(me);
        if (holder < 0) return false;
        self.hand_over(me, holder);
        return true;
    }

    int m_threads;
    std::vector<int> m_owners;   // the thread of each op
    std::vector<int> m_preempt;  // op, after, to per preemption
    int m_running = 0;
    int m_next[8] = {};
    int m_points[8] = {};
    bool m_in_item[8] = {};
    pthread_mutex_t m_mail[8];
    static inline turns* s_current = nullptr;
    static inline thread_local int t_thread = -1;
    static inline detail::sync_hooks s_hooks{&on_point, &on_blocked};
};

}  // namespace stresscoro::replay

#endif  // STRESSCORO_REPLAY_HPP_INCLUDED
