// Support for the standalone C++ reproducers stresscoro writes: run a schedule's body
// the way the driver does (on a thread with the adapter's stack size), and nothing more.
#ifndef STRESSCORO_REPLAY_HPP_INCLUDED
#define STRESSCORO_REPLAY_HPP_INCLUDED

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
/// the turn counter is a relaxed atomic, so taking turns orders nothing that
/// ThreadSanitizer can see; `send` is the only hand-off, through a mutex-guarded
/// mailbox that the receiver locks at the start of each of its turns.
class turns {
public:
    explicit turns(int threads) : m_threads(threads) {}

    /// Wait for turn `turn`, then collect this thread's mail.
    void begin(int turn, int thread) {
        while (m_turn.load(std::memory_order_relaxed) != turn) sched_yield();
        std::lock_guard<std::mutex> lock(m_mail[thread]);
    }
    void end(int turn) { m_turn.store(turn + 1, std::memory_order_relaxed); }

    /// Hand an object to thread `to`.
    void send(int to) { std::lock_guard<std::mutex> lock(m_mail[to]); }

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
    int m_threads;
    std::atomic<int> m_turn{0};
    std::mutex m_mail[8];
};

}  // namespace stresscoro::replay

#endif  // STRESSCORO_REPLAY_HPP_INCLUDED
