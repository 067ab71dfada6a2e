// Persistent schedule threads: started once in the process that runs schedules, then
// handed one schedule after another.
//
// Starting and joining threads for every schedule costs more than the schedule itself
// under ThreadSanitizer (a thread start there is hundreds of microseconds). The pool
// keeps the threads and gives each schedule the two happens-before edges a start and
// a join gave, through two atomics ThreadSanitizer sees (m_start, m_finish): everything
// the calling thread did before release() happens before every op of the schedule,
// and everything the schedule's threads did happens before release() returns. Nothing
// else between the calling thread and the pool is visible to it: the waiting is done
// on quiet words (plain atomics outside its view, with futexes to sleep on), so a
// wait's length never changes what it records.
//
// Invariants:
// - Threads 0 .. started()-1 exist in this process. A fork leaves the threads behind
//   in the parent: the first start() in the child finds another pid and starts anew.
// - A thread runs the body once per release() that counts it (index < n), never
//   between releases. The threads end at exit (stop()), or with the process.
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
            quiet_set(w.m_go, quiet_get(m_generation));
            quiet_set(w.m_sleeping, 0);
            if (pthread_create(&w.m_thread, &attr, &thread_main, &w) != 0) break;
            while (quiet_get(w.m_tid) == 0) sched_yield();
        }
        pthread_attr_destroy(&attr);
        return n <= m_started;
    }

    /// End and join the threads, if this process started them and no schedule is in
    /// flight (exit() called from an op leaves them be). At exit, so that
    /// ThreadSanitizer finds one thread left and skips its exit sleep (atexit_sleep_ms).
    void stop() noexcept {
        if (m_pid != getpid() || quiet_get(m_busy)) return;
        quiet_set(m_quit, 1);
        const int generation = quiet_get(m_generation) + 1;
        quiet_set(m_generation, generation);
        for (int i = 0; i < m_started; ++i) {
            quiet_set_seq(m_workers[i].m_go, generation);
            futex_wake(m_workers[i].m_go);
        }
        for (int i = 0; i < m_started; ++i) pthread_join(m_workers[i].m_thread, nullptr);
        m_started = 0;
        quiet_set(m_quit, 0);
    }

    /// The OS thread id of thread i (what sanitizer reports print).
    long long tid(int i) const noexcept { return quiet_get(m_workers[i].m_tid); }

    /// Run the body once on each of threads 0 .. n-1 (all started) and return when all
    /// have finished.
    void release(int n) noexcept {
        quiet_set(m_busy, 1);
        quiet_set(m_done, 0);
        quiet_set(m_active, n);
        m_start.fetch_add(1, std::memory_order_release);  // the edge a thread start gave
        const int generation = quiet_get(m_generation) + 1;
        quiet_set(m_generation, generation);
        for (int i = 0; i < n; ++i) {
            worker& w = m_workers[i];
            quiet_set_seq(w.m_go, generation);
            if (quiet_get_seq(w.m_sleeping)) futex_wake(w.m_go);
        }
        wait_until(m_done, n, m_caller_sleeping, main_spin_ns);
        (void)m_finish.load(std::memory_order_acquire);  // the edge a join gave
        quiet_set(m_busy, 0);
    }

private:
    struct worker {
        schedule_threads* m_pool = nullptr;
        pthread_t m_thread{};
        int m_index = 0;
        // Quiet words: only through quiet_*.
        int m_go = 0;        // the generation this thread is released for
        int m_sleeping = 0;  // 1 while it sleeps (or is about to) on m_go
        long long m_tid = 0;
    };

    // How long a thread spins for its next schedule before it sleeps: schedules run
    // back to back come within that; a worker waiting on its parent lets them sleep.
    static constexpr long long idle_spin_ns = 200'000;
    // The calling thread has nothing to do while a schedule runs: it sleeps early.
    static constexpr long long main_spin_ns = 20'000;

    static void* thread_main(void* arg) {
        worker& w = *static_cast<worker*>(arg);
        schedule_threads& pool = *w.m_pool;
        int seen = quiet_get(w.m_go);
        quiet_set(w.m_tid, static_cast<long long>(syscall(SYS_gettid)));
        for (;;) {
            wait_while(w.m_go, seen, w.m_sleeping, idle_spin_ns);
            seen = quiet_get(w.m_go);
            if (quiet_get(pool.m_quit)) break;
            (void)pool.m_start.load(std::memory_order_acquire);
            pool.m_body(w.m_index);
            pool.m_finish.fetch_add(1, std::memory_order_release);
            const int done = quiet_add_seq(pool.m_done, 1);
            if (done == quiet_get(pool.m_active) && quiet_get_seq(pool.m_caller_sleeping)) {
                futex_wake(pool.m_done);
            }
        }
        return nullptr;
    }

    static long long now_ns() noexcept {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
    }

    /// Until `word` differs from `value`: spin (yielding) for about spin_ns, then sleep
    /// on the word with `sleeping` set, so that its writer knows to wake us.
    static void wait_while(int& word, int value, int& sleeping, long long spin_ns) noexcept {
        const long long deadline = now_ns() + spin_ns;
        for (int i = 0; quiet_get(word) == value; ++i) {
            if ((i & 15) != 15 || now_ns() < deadline) {
                sched_yield();
                continue;
            }
            quiet_set_seq(sleeping, 1);
            while (quiet_get_seq(word) == value) futex_wait(word, value);
            quiet_set_seq(sleeping, 0);
        }
    }

    /// Until `word` reaches `target` (it only grows): as wait_while.
    static void wait_until(int& word, int target, int& sleeping, long long spin_ns) noexcept {
        int value;
        while ((value = quiet_get(word)) < target) wait_while(word, value, sleeping, spin_ns);
    }

    static void futex_wait(int& word, int value) noexcept {
        syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
    }
    static void futex_wake(int& word) noexcept {
        syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }

    // The sleep handshakes (set sleeping then read the word; write the word then read
    // sleeping) need sequential consistency, or a wake could be missed.
    STRESSCORO_NO_TSAN static int quiet_get(const int& w) noexcept {
        return __atomic_load_n(&w, __ATOMIC_ACQUIRE);
    }
    STRESSCORO_NO_TSAN static long long quiet_get(const long long& w) noexcept {
        return __atomic_load_n(&w, __ATOMIC_ACQUIRE);
    }
    STRESSCORO_NO_TSAN static void quiet_set(int& w, int v) noexcept {
        __atomic_store_n(&w, v, __ATOMIC_RELEASE);
    }
    STRESSCORO_NO_TSAN static void quiet_set(long long& w, long long v) noexcept {
        __atomic_store_n(&w, v, __ATOMIC_RELEASE);
    }
    STRESSCORO_NO_TSAN static int quiet_get_seq(const int& w) noexcept {
        return __atomic_load_n(&w, __ATOMIC_SEQ_CST);
    }
    STRESSCORO_NO_TSAN static void quiet_set_seq(int& w, int v) noexcept {
        __atomic_store_n(&w, v, __ATOMIC_SEQ_CST);
    }
    STRESSCORO_NO_TSAN static int quiet_add_seq(int& w, int v) noexcept {
        return __atomic_add_fetch(&w, v, __ATOMIC_SEQ_CST);
    }

    worker m_workers[capacity];
    int m_started = 0;
    pid_t m_pid = 0;
    body_fn m_body;
    void (*m_stop_fn)();
    bool m_stop_registered = false;
    // Quiet words.
    int m_generation = 0;
    int m_busy = 0;  // 1 while a schedule runs
    int m_quit = 0;  // 1 while stop() ends the threads
    int m_done = 0;    // threads finished with this generation
    int m_active = 0;  // threads released for it
    int m_caller_sleeping = 0;
    // Seen by ThreadSanitizer: one release and one acquire each per thread per schedule.
    std::atomic<unsigned> m_start{0};
    std::atomic<unsigned> m_finish{0};
};

}  // namespace stresscoro::detail

#endif  // STRESSCORO_DETAIL_SCHEDULE_THREADS_HPP_INCLUDED
