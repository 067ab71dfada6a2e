// The shared area between a worker and its parent: header words, then the event log.
//
// The parent maps the same file, so after a crash it can still read which op was in
// flight and every event written before it. Writers are not instrumented for TSan:
// schedule threads take strict turns, and the log must not create happens-before
// edges that would hide the target's own races.
#ifndef STRESSCORO_DETAIL_EVENT_LOG_HPP_INCLUDED
#define STRESSCORO_DETAIL_EVENT_LOG_HPP_INCLUDED

#include <stresscoro/detail/config.hpp>

#include <cstdint>

#if defined(STRESSCORO_TSAN)
#define STRESSCORO_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define STRESSCORO_NO_TSAN
#endif

namespace stresscoro {

// Header word indices; stresscoro/worker.py mirrors these numbers.
enum header_word : int {
    hw_magic = 0,
    hw_op_in_flight = 1,
    hw_thread_in_flight = 2,
    hw_events = 3,
    hw_capacity = 4,
    hw_status = 5,
    hw_dropped = 6,
    hw_words = 8,
};

inline constexpr long long shared_magic = 0x53434f52;  // "SCOR"
inline constexpr int event_words = 7;                   // kind, op, thread, a, b, c, d

// Event kinds; stresscoro/oracle.py mirrors these numbers.
enum event_kind : int {
    ev_alloc = 1,        // a=address b=size
    ev_free = 2,         // a=address b=size
    ev_double_free = 3,  // a=address (only where the driver owns the allocator)
    ev_state = 4,        // after an op, per held live slot: a=slot b=frame c=use count d=frame state
    ev_resume = 5,       // a=slot b=frame c=frame state before the resume
    ev_probe = 6,        // a=probe id b=resumes c=destroys d=first resume op
    ev_skip = 7,         // a=slot b=reason (1 empty slot)
    ev_end = 8,          // end-of-schedule drops begin
    ev_leak = 9,         // a=address b=size c=op that allocated it
    ev_exception = 10,   // an adapter call threw; a=slot
    ev_op_done = 11,     // the op finished
    ev_thread = 12,      // after the run: a=OS thread id of schedule thread `thread`
    ev_lost = 13,        // op=the probe's op, a=probe slot b=child frame: finished, never resumed
    ev_preempt = 14,     // op preempted on `thread` after sync point a, CPU to thread b; c=sync kind d=pc
    ev_preempt_stack = 15,  // follows ev_preempt: a..d the next return addresses up the stack
    ev_points = 16,      // an op of a schedule of 2+ threads passed a sync points (when counted)
};

namespace detail {

inline long long* g_shared = nullptr;
inline int g_shared_words = 0;

STRESSCORO_NO_TSAN inline void set_word(int index, long long value) noexcept {
    reinterpret_cast<volatile long long*>(g_shared)[index] = value;
}

STRESSCORO_NO_TSAN inline long long word(int index) noexcept {
    return reinterpret_cast<volatile long long*>(g_shared)[index];
}

/// Allocation events are the bulk of a log; they may fill only half of it, so the
/// ops' own events are never crowded out by a target that allocates a lot.
STRESSCORO_NO_TSAN inline bool room_for_allocation_events() noexcept {
    if (g_shared == nullptr) return false;
    volatile long long* w = g_shared;
    if (w[hw_events] * 2 < w[hw_capacity]) return true;
    w[hw_dropped] = w[hw_dropped] + 1;
    return false;
}

STRESSCORO_NO_TSAN inline void log_event(int kind, long long op, long long thread, long long a = 0,
                                         long long b = 0, long long c = 0,
                                         long long d = 0) noexcept {
    if (g_shared == nullptr) return;
    volatile long long* w = g_shared;
    long long n = w[hw_events];
    if (n >= w[hw_capacity]) {
        w[hw_dropped] = w[hw_dropped] + 1;
        return;
    }
    volatile long long* e = w + hw_words + n * event_words;
    e[0] = kind;
    e[1] = op;
    e[2] = thread;
    e[3] = a;
    e[4] = b;
    e[5] = c;
    e[6] = d;
    w[hw_events] = n + 1;
}

}  // namespace detail
}  // namespace stresscoro

#endif  // STRESSCORO_DETAIL_EVENT_LOG_HPP_INCLUDED
