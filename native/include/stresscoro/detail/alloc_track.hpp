// Per-schedule allocation accounting.
//
// Whole-process LeakSanitizer is useless inside CPython (the interpreter leaks at
// exit), so the driver counts for itself: every allocation made while an op runs is
// recorded with the op's index, every free removes it, and whatever is left after the
// end-of-schedule drops is a leak of that op.
//
// Under ASan and TSan the sanitizer's malloc/free hooks feed the table. Elsewhere
// (no sanitizer, UBSan) this module replaces the global operator new/delete of its
// own shared object; then tracked frees are also quarantined and poisoned until the
// schedule ends, so a use after free crashes and a double free is caught by name.
#ifndef STRESSCORO_DETAIL_ALLOC_TRACK_HPP_INCLUDED
#define STRESSCORO_DETAIL_ALLOC_TRACK_HPP_INCLUDED

#include <stresscoro/detail/config.hpp>

#include <stresscoro/detail/event_log.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(STRESSCORO_ASAN) || defined(STRESSCORO_TSAN)
#define STRESSCORO_SANITIZER_HOOKS 1
// Declared here: GCC ships no sanitizer/allocator_interface.h. Both runtimes export it.
extern "C" int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void*, std::size_t), void (*free_hook)(const volatile void*));
#else
#define STRESSCORO_SANITIZER_HOOKS 0
#endif

namespace stresscoro::detail {

struct alloc_entry {
    std::uintptr_t address;  // 0: empty
    long long size;
    int op;
    bool freed;  // quarantined (own-allocator builds only)
};

// The table is the harness's own memory: its code is STRESSCORO_UNCHECKED (neither ASan
// nor TSan instruments it), which halves its cost on targets that allocate a frame per
// link of a long chain.
//
// An open-addressing hash table with linear probing. A free removes its entry by
// shifting the rest of its probe run back (no tombstones), so lookups stay a few
// probes long however many blocks a schedule allocates and frees: the cost per
// allocation stays close to the sanitizer's own.
inline constexpr std::size_t alloc_table_size = std::size_t{1} << 15;
inline constexpr std::size_t alloc_table_mask = alloc_table_size - 1;
inline alloc_entry g_allocs[alloc_table_size];
inline std::size_t g_alloc_live = 0;
// Indices of the table entries this schedule used (each listed once), so finishing
// touches only those.
inline std::size_t g_used[alloc_table_size];
inline bool g_listed[alloc_table_size];
inline std::size_t g_used_count = 0;
// The op whose allocations are being counted, or -1 between ops.
// Relaxed atomics written through the parenthesised builtins, so never sync points
// (stresscoro/preempt.hpp): the allocations of an op must not change its count of them.
inline int g_armed_op = -1;
inline int g_armed_thread = 0;
STRESSCORO_UNCHECKED inline int armed_op() noexcept { return (__atomic_load_n)(&g_armed_op, __ATOMIC_RELAXED); }
STRESSCORO_UNCHECKED inline int armed_thread() noexcept { return (__atomic_load_n)(&g_armed_thread, __ATOMIC_RELAXED); }
STRESSCORO_UNCHECKED inline void arm(int op, int thread) noexcept {
    (__atomic_store_n)(&g_armed_thread, thread, __ATOMIC_RELAXED);
    (__atomic_store_n)(&g_armed_op, op, __ATOMIC_RELAXED);
}
inline bool g_table_full = false;

STRESSCORO_UNCHECKED inline std::size_t alloc_slot(std::uintptr_t address) noexcept {
    return (address >> 4) * 0x9E3779B97F4A7C15ull >> 49;  // top 15 bits
}

STRESSCORO_UNCHECKED inline alloc_entry* find_alloc(std::uintptr_t address) noexcept {
    for (std::size_t i = alloc_slot(address), probes = 0; probes < alloc_table_size;
         i = (i + 1) & alloc_table_mask, ++probes) {
        if (g_allocs[i].address == address) return &g_allocs[i];
        if (g_allocs[i].address == 0) return nullptr;
    }
    return nullptr;
}

/// Remove the entry at `e`: later entries of its probe run move back into the hole
/// unless their home slot lies cyclically after the hole.
STRESSCORO_UNCHECKED inline void erase_alloc(alloc_entry* e) noexcept {
    std::size_t hole = static_cast<std::size_t>(e - g_allocs);
    for (std::size_t j = (hole + 1) & alloc_table_mask; g_allocs[j].address != 0;
         j = (j + 1) & alloc_table_mask) {
        std::size_t home = alloc_slot(g_allocs[j].address);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays) continue;
        g_allocs[hole] = g_allocs[j];
        hole = j;
    }
    g_allocs[hole] = alloc_entry{0, 0, 0, false};
    --g_alloc_live;
}

STRESSCORO_UNCHECKED inline void record_alloc(const volatile void* ptr, std::size_t size) noexcept {
    int op = armed_op();
    if (op < 0 || ptr == nullptr) return;
    auto address = reinterpret_cast<std::uintptr_t>(ptr);
    if (alloc_entry* old = find_alloc(address)) erase_alloc(old);  // its free went unseen
    if (g_alloc_live * 4 >= alloc_table_size * 3) {
        g_table_full = true;
        return;
    }
    for (std::size_t i = alloc_slot(address);; i = (i + 1) & alloc_table_mask) {
        if (g_allocs[i].address == 0) {
            if (!g_listed[i]) {
                g_listed[i] = true;
                g_used[g_used_count++] = i;
            }
            g_allocs[i] = alloc_entry{address, static_cast<long long>(size), op, false};
            ++g_alloc_live;
            break;
        }
    }
    if (room_for_allocation_events()) log_event(ev_alloc, op, armed_thread(),
              static_cast<long long>(address), static_cast<long long>(size));
}

/// Returns false when the block must not be released to the system allocator
/// (quarantined, or already freed).
STRESSCORO_UNCHECKED inline bool record_free(const volatile void* ptr, bool quarantine) noexcept {
    if (ptr == nullptr) return true;
    auto address = reinterpret_cast<std::uintptr_t>(ptr);
    alloc_entry* e = find_alloc(address);
    if (e == nullptr) return true;
    int op = armed_op();
    int thread = armed_thread();
    if (e->freed) {
        log_event(ev_double_free, op, thread, static_cast<long long>(address), e->size);
        return false;
    }
    if (room_for_allocation_events()) {
        log_event(ev_free, op, thread, static_cast<long long>(address), e->size);
    }
    if (!quarantine) {
        erase_alloc(e);
        return true;
    }
    e->freed = true;
    std::memset(const_cast<void*>(ptr), 0xdd, static_cast<std::size_t>(e->size));
    return false;
}

#if STRESSCORO_SANITIZER_HOOKS
STRESSCORO_UNCHECKED inline void malloc_hook(const volatile void* ptr, std::size_t size) {
    record_alloc(ptr, size);
}
STRESSCORO_UNCHECKED inline void free_hook(const volatile void* ptr) { record_free(ptr, false); }

inline void install_alloc_hooks() noexcept {
    static bool installed = false;
    if (!installed) {
        __sanitizer_install_malloc_and_free_hooks(&malloc_hook, &free_hook);
        installed = true;
    }
}
inline constexpr bool own_allocator = false;
#else
inline void install_alloc_hooks() noexcept {}
inline constexpr bool own_allocator = true;
#endif

/// Report every tracked block still allocated as a leak, release the quarantine,
/// and empty the table for the next schedule.
STRESSCORO_UNCHECKED inline void finish_alloc_tracking(long long end_op) noexcept {
    for (std::size_t k = 0; k < g_used_count; ++k) {
        alloc_entry& e = g_allocs[g_used[k]];
        g_listed[g_used[k]] = false;
        if (e.address != 0) {
            if (!e.freed) {
                log_event(ev_leak, end_op, 0, static_cast<long long>(e.address), e.size, e.op);
            } else {
                std::free(reinterpret_cast<void*>(e.address));
            }
        }
        e = alloc_entry{0, 0, 0, false};
    }
    g_used_count = 0;
    g_alloc_live = 0;
    g_table_full = false;
}

}  // namespace stresscoro::detail

#if !STRESSCORO_SANITIZER_HOOKS
// Our own allocator entry points, visible to the target code in this module only.
// operator new must never return null: retry through the new-handler like the
// standard one does, then throw.
namespace stresscoro::detail {
inline void* tracked_new(std::size_t size, std::size_t align) {
    if (size == 0) size = 1;
    for (;;) {
        void* p = align > alignof(std::max_align_t)
                      ? std::aligned_alloc(align, (size + align - 1) / align * align)
                      : std::malloc(size);
        if (p != nullptr) {
            record_alloc(p, size);
            return p;
        }
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr) throw std::bad_alloc();
        handler();
    }
}
inline void tracked_delete(void* p) noexcept {
    if (record_free(p, true)) std::free(p);
}
}  // namespace stresscoro::detail

void* operator new(std::size_t n) { return stresscoro::detail::tracked_new(n, 0); }
void* operator new[](std::size_t n) { return stresscoro::detail::tracked_new(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
    return stresscoro::detail::tracked_new(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return stresscoro::detail::tracked_new(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try { return stresscoro::detail::tracked_new(n, 0); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try { return stresscoro::detail::tracked_new(n, 0); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { stresscoro::detail::tracked_delete(p); }
void operator delete[](void* p) noexcept { stresscoro::detail::tracked_delete(p); }
void operator delete(void* p, std::size_t) noexcept { stresscoro::detail::tracked_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { stresscoro::detail::tracked_delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { stresscoro::detail::tracked_delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { stresscoro::detail::tracked_delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    stresscoro::detail::tracked_delete(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    stresscoro::detail::tracked_delete(p);
}
#endif

#endif  // STRESSCORO_DETAIL_ALLOC_TRACK_HPP_INCLUDED
