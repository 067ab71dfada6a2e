// Persistent schedule threads: started once in the process that runs schedules, then
// handed one schedule after another.
//
// Starting and joining threads for every schedule costs more than the schedule itself
// under ThreadSanitizer (a thread start there is hundreds of microseconds). The pool
// keeps the threads and gives each schedule the two happens-before edges a start and
// a join gave, through two atomics ThreadSanitizer sees (m_start, m_finish): everything
// the calling thread did before launch() happens before every op of the schedule,
// and everything the schedule's threads did happens before finish() returns. Nothing
// else between the calling thread and the pool is visible to it: the waiting is done
// on quiet words (plain atomics outside its view, with futexes to sleep on), so a
// wait's length never changes what it records.
//
// Invariants:
// - Threads 0 .. m_started-1 exist in this process. A fork leaves the threads behind
//   in the parent: the first start() in the child finds another pid and starts anew.
// - A thread runs the body once per launch() that counts it (index < n), never
//   otherwise. The threads end at exit (stop()), or with the process.
// - Thread-local variables of the code a schedule runs live as long as the pool, not
//   one schedule (as they do for the calling thread of driver::run_on_calling_thread).
#ifndef STRESSCORO_DETAIL_SCHEDULE_THREADS_HPP_INCLUDED
#define STRESSCORO_DETAIL_SCHEDULE_THREADS_HPP_INCLUDED

#include <stresscoro/detail/event_log.hpp>

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>

namespace stresscoro::detail {

// Quiet words: plain ints read and written only through these, never as a
// happens-before edge for TSan (the driver's turn-taking, the pool's hand-offs). GCC
// does not instrument these functions at all; Clang still instruments their atomics,
// so every access is relaxed (TSan draws no edge from relaxed atomics) and the order
// the hardware needs comes from fences, which TSan does not model. Hidden from GCC's
// TSan, how long a wait spins never perturbs its shadow state (which of four past
// accesses a cell keeps), so the same schedule gives the same report. The sleep
// handshakes (count a sleeper then read the word; write the word then read the
// sleepers) need the sequentially consistent fences, or a wake-up could be missed.
STRESSCORO_NO_TSAN inline int quiet_get(const int& w) noexcept {
    const int v = (__atomic_load_n)(&w, __ATOMIC_RELAXED);
    (__atomic_thread_fence)(__ATOMIC_ACQUIRE);
    return v;
}
STRESSCORO_NO_TSAN inline long long quiet_get(const long long& w) noexcept {
    const long long v = (__atomic_load_n)(&w, __ATOMIC_RELAXED);
    (__atomic_thread_fence)(__ATOMIC_ACQUIRE);
    return v;
}
STRESSCORO_NO_TSAN inline void quiet_set(int& w, int v) noexcept {
    (__atomic_thread_fence)(__ATOMIC_RELEASE);
    (__atomic_store_n)(&w, v, __ATOMIC_RELAXED);
    (__atomic_thread_fence)(__ATOMIC_SEQ_CST);
}
STRESSCORO_NO_TSAN inline void quiet_set(long long& w, long long v) noexcept {
    (__atomic_thread_fence)(__ATOMIC_RELEASE);
    (__atomic_store_n)(&w, v, __ATOMIC_RELAXED);
    (__atomic_thread_fence)(__ATOMIC_SEQ_CST);
}
STRESSCORO_NO_TSAN inline int quiet_add(int& w, int v) noexcept {
    (__atomic_thread_fence)(__ATOMIC_RELEASE);
    const int sum = (__atomic_add_fetch)(&w, v, __ATOMIC_RELAXED);
    (__atomic_thread_fence)(__ATOMIC_SEQ_CST);
    return sum;
}

STRESSCORO_NO_TSAN inline long long monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

/// A quiet word other threads wait on until it changes.
struct quiet_signal {
    int m_value = 0;
    int m_sleepers = 0;

    /// Until the value differs from `seen`: on the CPU for a few microseconds (a
    /// hand-off between two running threads takes about one), then yielding it until
    /// `spin_ns` have passed, then asleep (a loaded machine may not be running the
    /// thread that will change it; yielding in a loop there costs more than a sleep).
    STRESSCORO_NO_TSAN void wait_while(int seen, long long spin_ns) noexcept {
        long long deadline = 0;
        for (int i = 0; quiet_get(m_value) == seen; ++i) {
            if (i < 64) {
                cpu_relax();
                continue;
            }
            if ((i & 7) == 0) {
                const long long now = monotonic_ns();
                if (deadline == 0) deadline = now + spin_ns;
                if (now >= deadline) {
                    quiet_add(m_sleepers, 1);
                    while (quiet_get(m_value) == seen) {
                        syscall(SYS_futex, &m_value, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
                    }
                    quiet_add(m_sleepers, -1);
                    return;
                }
            }
            sched_yield();
        }
    }

    /// Until the value (which only grows) reaches `target`.
    STRESSCORO_NO_TSAN void wait_until(int target, long long spin_ns) noexcept {
        for (int v; (v = quiet_get(m_value)) < target;) wait_while(v, spin_ns);
    }

    STRESSCORO_NO_TSAN void set(int value) noexcept {
        quiet_set(m_value, value);
        wake();
    }

    /// Add one; wake the sleepers when the value reaches `target`.
    STRESSCORO_NO_TSAN void add(int target) noexcept {
        if (quiet_add(m_value, 1) == target) wake();
    }

    STRESSCORO_NO_TSAN int get() const noexcept { return quiet_get(m_value); }

private:
    STRESSCORO_NO_TSAN void wake() noexcept {
        if (quiet_get(m_sleepers) > 0) {
            syscall(SYS_futex, &m_value, FUTEX_WAKE_PRIVATE, max_waiters, nullptr, nullptr, 0);
        }
    }
    static constexpr int max_waiters = 1 << 30;

    STRESSCORO_NO_TSAN static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    }
};

class schedule_threads {
public:
    static constexpr int capacity = 8;
    using body_fn = void (*)(int index);

    /// `body` runs a schedule's share on thread `index`; `stop_fn` is a function that
    /// calls this pool's stop(), registered with std::atexit by the first start.
    constexpr schedule_threads(body_fn body, void (*stop_fn)()) noexcept
        : m_body(body), m_stop_fn(stop_fn) {}
    schedule_threads(const schedule_threads&) = delete;
    schedule_threads& operator=(const schedule_threads&) = delete;

    /// Threads 0 .. n-1 exist (started now if missing), each with a stack of
    /// `stack_bytes`. False if one could not start (those that did stay, idle).
    /// Start-up allocations happen here, never in an op.
    bool start(int n, std::size_t stack_bytes) noexcept {
        const pid_t pid = getpid();
        if (m_pid != pid) {  // a forked child (or the first call): no thread of ours here
            m_pid = pid;
            m_started = 0;
        }
        if (n <= m_started) return true;
        if (!m_stop_registered) {
            m_stop_registered = true;  // a forked child inherits the registration too
            std::atexit(m_stop_fn);
        }
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, stack_bytes);
        for (; m_started < n; ++m_started) {
            worker& w = m_workers[m_started];
            w.m_pool = this;
            w.m_index = m_started;
            quiet_set(w.m_tid, 0);
            if (pthread_create(&w.m_thread, &attr, &thread_main, &w) != 0) break;
            while (quiet_get(w.m_tid) == 0) sched_yield();
        }
        pthread_attr_destroy(&attr);
        return n <= m_started;
    }

    /// The OS thread id of thread i (what sanitizer reports print).
    long long tid(int i) const noexcept { return quiet_get(m_workers[i].m_tid); }

    /// Start the body on each of threads 0 .. n-1 (all started); finish() waits for them.
    void launch(int n) noexcept {
        quiet_set(m_busy, 1);
        m_done.set(0);
        quiet_set(m_active, n);
        m_start.fetch_add(1, std::memory_order_release);  // the edge a thread start gave
        const int generation = m_generation + 1;
        m_generation = generation;
        for (int i = 0; i < n; ++i) m_workers[i].m_go.set(generation);
    }

    /// Return when every thread of the last launch() has finished its body.
    void finish() noexcept {
        m_done.wait_until(quiet_get(m_active), caller_spin_ns);
        (void)m_finish.load(std::memory_order_acquire);  // the edge a join gave
        quiet_set(m_busy, 0);
    }

    /// End and join the threads, if this process started them and no schedule is in
    /// flight (exit() called from an op leaves them be). Registered with atexit, so that
    /// ThreadSanitizer finds one thread left at exit and skips its exit sleep.
    void stop() noexcept {
        if (m_pid != getpid() || quiet_get(m_busy)) return;
        quiet_set(m_quit, 1);
        const int generation = m_generation + 1;
        m_generation = generation;
        for (int i = 0; i < m_started; ++i) m_workers[i].m_go.set(generation);
        for (int i = 0; i < m_started; ++i) pthread_join(m_workers[i].m_thread, nullptr);
        m_started = 0;
        quiet_set(m_quit, 0);
    }

private:
    struct worker {
        schedule_threads* m_pool = nullptr;
        pthread_t m_thread{};
        int m_index = 0;
        quiet_signal m_go;   // the generation this thread is released for
        long long m_tid = 0;  // quiet
    };

    // How long a thread waits on the CPU for its next schedule before it sleeps:
    // schedules run back to back come within that; a worker waiting on its parent
    // lets them sleep.
    static constexpr long long idle_spin_ns = 200'000;
    // The calling thread waits for the others' last turns (if it took part) or for a
    // whole schedule.
    static constexpr long long caller_spin_ns = 20'000;

    static void* thread_main(void* arg) {
        worker& w = *static_cast<worker*>(arg);
        schedule_threads& pool = *w.m_pool;
        int seen = w.m_go.get();
        quiet_set(w.m_tid, static_cast<long long>(syscall(SYS_gettid)));
        for (;;) {
            w.m_go.wait_while(seen, idle_spin_ns);
            seen = w.m_go.get();
            if (pool.quit()) break;
            (void)pool.m_start.load(std::memory_order_acquire);
            pool.m_body(w.m_index);
            pool.m_finish.fetch_add(1, std::memory_order_release);
            pool.m_done.add(pool.active());
        }
        return nullptr;
    }

    int quit() const noexcept { return quiet_get(m_quit); }
    int active() const noexcept { return quiet_get(m_active); }

    worker m_workers[capacity];
    int m_started = 0;
    pid_t m_pid = 0;
    body_fn m_body;
    void (*m_stop_fn)();
    bool m_stop_registered = false;
    int m_generation = 0;  // the caller's count of launches
    // Quiet: written by the caller before it sets a thread's m_go, read after.
    int m_active = 0;  // threads launched for this generation
    int m_quit = 0;    // 1 while stop() ends the threads
    int m_busy = 0;    // 1 while a schedule runs
    quiet_signal m_done;  // threads finished with this generation
    // Seen by ThreadSanitizer: one release and one acquire each per thread per schedule.
    std::atomic<unsigned> m_start{0};
    std::atomic<unsigned> m_finish{0};
};

}  // namespace stresscoro::detail

#endif  // STRESSCORO_DETAIL_SCHEDULE_THREADS_HPP_INCLUDED
