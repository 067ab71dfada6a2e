// Sync points: every atomic operation, fence and mutex lock or unlock that the code under
// test executes calls into stresscoro, so that the scheduler can hand the CPU to another
// schedule thread right there (a preemption inside an op).
//
// This header comes first in every translation unit stresscoro builds (the cffi module,
// the explorer, exported fuzzers, reproducers), before any standard header. It turns the
// compiler's __atomic builtins, which libstdc++'s std::atomic, std::shared_ptr and
// std::atomic_flag are written in, into the same builtin followed by a call of
// stresscoro::detail::sync_point, and pthread_mutex_lock/unlock (which std::mutex calls
// inline) into versions that never block the turn: a lock held by a preempted thread
// makes the caller give its turn away until the holder releases it. It is a source-level
// hook, so it works the same under ASan, TSan, UBSan and no sanitizer, with GCC and Clang.
//
// Not covered: atomics compiled outside these translation units (libstdc++.so's own
// condition_variable, a prebuilt library) and condition-variable waits.
//
// The harness writes its own atomics as `(__atomic_load_n)(...)`: a parenthesised name is
// not a macro call, so those are never sync points. While no hook is installed a sync point
// costs one relaxed load and a predictable branch.
#ifndef STRESSCORO_PREEMPT_HPP_INCLUDED
#define STRESSCORO_PREEMPT_HPP_INCLUDED

#include <pthread.h>  // declared before the mutex macros below rename the calls

namespace stresscoro::detail {

// Sync kinds; stresscoro/oracle.py mirrors these numbers.
enum sync_kind : int {
    sync_load = 1,
    sync_store = 2,
    sync_exchange = 3,
    sync_compare_exchange = 4,
    sync_add = 5,
    sync_sub = 6,
    sync_rmw = 7,
    sync_fence = 8,
    sync_lock = 9,
    sync_unlock = 10,
    sync_flag = 11,
};

/// The scheduler's side: installed by the driver (or a reproducer) while a schedule runs.
struct sync_hooks {
    /// After a sync point; `pc` is the return address into the code that made it.
    void (*m_point)(int kind, void* pc);
    /// Called instead of blocking on a lock another schedule thread holds; returns false
    /// when no other schedule thread can run (the caller then blocks for real).
    bool (*m_blocked)();
};

inline sync_hooks* g_sync_hooks = nullptr;

[[gnu::noinline, gnu::no_sanitize_address, gnu::no_sanitize_thread]]
inline void sync_point_slow(int kind) noexcept {
    sync_hooks* h = (__atomic_load_n)(&g_sync_hooks, __ATOMIC_RELAXED);
    if (h != nullptr) h->m_point(kind, __builtin_return_address(0));
}

[[gnu::always_inline, gnu::no_sanitize_address, gnu::no_sanitize_thread]]
inline void sync_point(int kind) noexcept {
    if (__builtin_expect((__atomic_load_n)(&g_sync_hooks, __ATOMIC_RELAXED) != nullptr, 0)) {
        sync_point_slow(kind);
    }
}

[[gnu::noinline]] inline int hooked_mutex_lock(pthread_mutex_t* m) noexcept {
    sync_hooks* h = (__atomic_load_n)(&g_sync_hooks, __ATOMIC_RELAXED);
    if (h != nullptr) {
        // Another schedule thread holding the lock is waiting for its turn: give ours away
        // until it has released it.
        while ((pthread_mutex_trylock)(m) != 0) {
            if (!h->m_blocked()) return (pthread_mutex_lock)(m);
        }
        h->m_point(sync_lock, __builtin_return_address(0));
        return 0;
    }
    return (pthread_mutex_lock)(m);
}

[[gnu::noinline]] inline int hooked_mutex_unlock(pthread_mutex_t* m) noexcept {
    const int rc = (pthread_mutex_unlock)(m);
    sync_hooks* h = (__atomic_load_n)(&g_sync_hooks, __ATOMIC_RELAXED);
    if (h != nullptr) h->m_point(sync_unlock, __builtin_return_address(0));
    return rc;
}

}  // namespace stresscoro::detail

// A value-returning builtin: run it, then the sync point, then yield its value.
#define STRESSCORO_SYNC_VALUE_(kind, call) \
    __extension__({ auto __stresscoro_v = call; ::stresscoro::detail::sync_point(kind); __stresscoro_v; })
#define STRESSCORO_SYNC_VOID_(kind, call) ((call), ::stresscoro::detail::sync_point(kind))

#define __atomic_load_n(p, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_load, __atomic_load_n(p, m))
#define __atomic_load(p, r, m) STRESSCORO_SYNC_VOID_(::stresscoro::detail::sync_load, __atomic_load(p, r, m))
#define __atomic_store_n(p, v, m) STRESSCORO_SYNC_VOID_(::stresscoro::detail::sync_store, __atomic_store_n(p, v, m))
#define __atomic_store(p, v, m) STRESSCORO_SYNC_VOID_(::stresscoro::detail::sync_store, __atomic_store(p, v, m))
#define __atomic_exchange_n(p, v, m) \
    STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_exchange, __atomic_exchange_n(p, v, m))
#define __atomic_exchange(p, v, r, m) \
    STRESSCORO_SYNC_VOID_(::stresscoro::detail::sync_exchange, __atomic_exchange(p, v, r, m))
#define __atomic_compare_exchange_n(p, e, d, w, s, f) \
    STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_compare_exchange, __atomic_compare_exchange_n(p, e, d, w, s, f))
#define __atomic_compare_exchange(p, e, d, w, s, f) \
    STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_compare_exchange, __atomic_compare_exchange(p, e, d, w, s, f))
#define __atomic_fetch_add(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_add, __atomic_fetch_add(p, v, m))
#define __atomic_add_fetch(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_add, __atomic_add_fetch(p, v, m))
#define __atomic_fetch_sub(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_sub, __atomic_fetch_sub(p, v, m))
#define __atomic_sub_fetch(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_sub, __atomic_sub_fetch(p, v, m))
#define __atomic_fetch_and(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_fetch_and(p, v, m))
#define __atomic_and_fetch(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_and_fetch(p, v, m))
#define __atomic_fetch_or(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_fetch_or(p, v, m))
#define __atomic_or_fetch(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_or_fetch(p, v, m))
#define __atomic_fetch_xor(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_fetch_xor(p, v, m))
#define __atomic_xor_fetch(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_xor_fetch(p, v, m))
#define __atomic_fetch_nand(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_fetch_nand(p, v, m))
#define __atomic_nand_fetch(p, v, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_rmw, __atomic_nand_fetch(p, v, m))
#define __atomic_test_and_set(p, m) STRESSCORO_SYNC_VALUE_(::stresscoro::detail::sync_flag, __atomic_test_and_set(p, m))
#define __atomic_clear(p, m) STRESSCORO_SYNC_VOID_(::stresscoro::detail::sync_flag, __atomic_clear(p, m))
#define __atomic_thread_fence(m) STRESSCORO_SYNC_VOID_(::stresscoro::detail::sync_fence, __atomic_thread_fence(m))

// Global names, so that a call written `::pthread_mutex_lock(m)` still compiles.
inline int stresscoro_mutex_lock(pthread_mutex_t* m) noexcept { return stresscoro::detail::hooked_mutex_lock(m); }
inline int stresscoro_mutex_unlock(pthread_mutex_t* m) noexcept { return stresscoro::detail::hooked_mutex_unlock(m); }
#define pthread_mutex_lock(m) stresscoro_mutex_lock(m)
#define pthread_mutex_unlock(m) stresscoro_mutex_unlock(m)

#endif  // STRESSCORO_PREEMPT_HPP_INCLUDED
