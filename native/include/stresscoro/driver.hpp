// The driver: runs one encoded schedule against an adapter's object type in one call.
//
// Invariants the driver keeps:
// - Ops run in exactly the schedule's order, each on its own schedule thread. Threads
//   take turns through a relaxed atomic counter, which gives ThreadSanitizer no
//   happens-before edge: only the target's synchronisation (and `send`, which goes
//   through a mutex like a real hand-off queue) orders one thread's work after another's.
// - Schedule threads are persistent (detail::schedule_threads), started by the first
//   schedule that needs them; between schedules they give ThreadSanitizer the same
//   edges a thread start and join would.
// - The header of the shared area always names the op in flight, so a crash can be
//   attributed to an op by the parent.
// - After the last op every live slot is dropped by the thread that holds it (threads
//   in order; each thread's slots newest first, by the op that constructed them), then
//   allocation accounting reports what is left.
//
// - A slot holds nothing, an object, or a probe (a synthetic awaiting coroutine made
//   by `probe`, freed when the slot is dropped). Around the schedule the adapter's
//   begin() and end() run on the calling thread; its run_pending() runs at the start
//   of the end-of-schedule turns, before any drop, and then probes whose child
//   finished without resuming them are reported (continuation lost).
//
// The encoded schedule (stresscoro/schedule.py writes it):
//     magic, version, slots, threads, ops, then per op: code, thread, a, b, c, d, e
#ifndef STRESSCORO_DRIVER_HPP_INCLUDED
#define STRESSCORO_DRIVER_HPP_INCLUDED

#include <stresscoro/detail/config.hpp>

#include <stresscoro/adapter.hpp>
#include <stresscoro/detail/alloc_track.hpp>
#include <stresscoro/detail/event_log.hpp>
#include <stresscoro/detail/schedule_fibers.hpp>
#include <stresscoro/detail/schedule_threads.hpp>
#include <stresscoro/preempt.hpp>
#include <stresscoro/probe.hpp>

#if defined(STRESSCORO_ASAN)
extern "C" int __asan_address_is_poisoned(void const volatile* address);
#endif
#if defined(STRESSCORO_TSAN)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif
#include <dlfcn.h>
#include <unwind.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

namespace stresscoro {

// Op codes; stresscoro/schedule.py mirrors these numbers.
enum op_code : int {
    op_make = 1,         // slot, factory, arg
    op_copy = 2,         // src, dst
    op_copy_assign = 3,  // src, dst
    op_move = 4,         // src, dst
    op_move_assign = 5,  // src, dst
    op_swap = 6,         // a, b
    op_resume = 7,       // slot
    op_drop = 8,         // slot
    op_send = 9,         // slot, thread
    op_touch = 10,       // slot
    op_await = 11,       // slot: a probe awaits the object (probe never freed)
    op_make_from = 12,   // dst, combinator, arg, src, src2 (-1: none)
    op_call = 13,        // custom op, arg, x (-1: none), y (-1: none)
    op_step = 14,        // the adapter's step()
    op_probe = 15,       // dst, src: a probe living in dst awaits src
    op_code_count = 16,
};

inline constexpr int schedule_magic = 0x5343;
inline constexpr int schedule_version = 3;  // 3 added preemptions; 2 still runs
inline constexpr int preempt_words = 3;        // per preemption: op, after, to
inline constexpr int max_preemptions = 8;  // stresscoro/schedule.py MAX_PREEMPTIONS
inline constexpr int max_after = 64;       // stresscoro/schedule.py MAX_AFTER
inline constexpr int op_words = 7;
inline constexpr int max_slots = 16;
inline constexpr int max_threads = 8;
static_assert(max_threads <= detail::schedule_threads::capacity);
inline constexpr int max_ops = 4096;
inline constexpr std::size_t driver_stack_margin = 64 * 1024;
inline constexpr std::size_t pool_frames_allowance = 4 * 1024;

// Negative return codes of run(); stresscoro/worker.py names them.
enum run_error : int {
    err_bad_header = -1,
    err_bad_op = -2,
    err_shared_area = -3,
    err_thread_start = -4,
};

namespace detail {

/// While alive, ThreadSanitizer does not see this thread's memory accesses: the
/// driver's own reads of a frame (done(), use count) must never join a race report.
struct harness_reads {
#if defined(STRESSCORO_TSAN)
    harness_reads() noexcept { __tsan_ignore_thread_begin(); }
    ~harness_reads() { __tsan_ignore_thread_end(); }
#else
    harness_reads() noexcept = default;
#endif
    harness_reads(const harness_reads&) = delete;
    harness_reads& operator=(const harness_reads&) = delete;
};

}  // namespace detail

template <adapter A>
class driver {
    using object = typename A::object;

    struct slot {
        alignas(object) unsigned char m_bytes[sizeof(object)];
        // Harness bookkeeping is a relaxed atomic (through the parenthesised builtins,
        // never a sync point) so that a schedule that breaks thread ownership is blamed
        // on the target's own accesses, never on ours.
        bool m_live = false;
        probe_frame* m_probe = nullptr;  // a slot holds an object or a probe, never both
        int m_born = 0;  // the op that constructed what it holds: end drops go newest first
        object& get() noexcept { return *std::launder(reinterpret_cast<object*>(m_bytes)); }
    };

    struct mailbox {
        // A raw pthread mutex locked through the parenthesised calls: the hand-off is the
        // harness's, never a sync point of the target (stresscoro/preempt.hpp).
        pthread_mutex_t m_mutex = PTHREAD_MUTEX_INITIALIZER;
        int m_slots[max_slots];
        int m_count = 0;
    };

    struct thread_ctx {
        int m_index = 0;
        std::atomic<long long> m_tid{0};  // the OS thread id, which sanitizer reports print
        pthread_t m_self{};  // the thread running it (OS-thread mode), written as it starts
        bool m_holds[max_slots] = {};
    };

    struct run_state {
        const int* m_ops = nullptr;
        int m_ops_count = 0;
        int m_slots = 0;
        int m_threads = 0;
        const int* m_preempt = nullptr;  // op, after, to per preemption
        int m_preempt_count = 0;
    };

    /// Who holds the CPU, and where each schedule thread is in the schedule. Items are
    /// turn numbers: op i is item i, thread t's end-of-schedule turn is item n_ops + t.
    /// Only the thread holding the CPU reads or writes these (uninstrumented code), and
    /// it passes the CPU on through the quiet word m_running, so TSan sees no edge.
    struct sched_state {
        detail::quiet_signal m_running;   // the schedule thread holding the CPU, or all_done
        int m_next[max_threads] = {};     // each thread's current or next item; no_item: none
        int m_points[max_threads] = {};   // sync points of its current item so far
        bool m_in_item[max_threads] = {};
        bool m_hooked = false;            // sync points are being counted this schedule
    };
    static constexpr int no_item = 1 << 30;
    static constexpr int all_done = max_threads + 1;

    static inline slot s_slots[max_slots];
    static inline mailbox s_mail[max_threads];
    static inline probe_frame s_probes[max_ops];
    static inline int s_probe_count = 0;  // relaxed atomic, unhooked
    static inline run_state s_run;
    static inline sched_state s_sched;
    static inline thread_ctx s_ctx[max_threads];

public:
    static constexpr bool can_copy = std::is_copy_constructible_v<object>;
    static constexpr bool can_copy_assign = std::is_copy_assignable_v<object>;
    static constexpr bool can_move = std::is_move_constructible_v<object>;
    static constexpr bool can_move_assign = std::is_move_assignable_v<object>;
    static constexpr bool can_swap = std::is_swappable_v<object>;
    static constexpr bool await_rvalue = !detail::rules_of<A>().await_lvalue;
    /// The probe can `co_await` the object: asked for (`awaitable = true`, then it must
    /// compile), or undeclared and it compiles; never when `awaitable = false`.
    static constexpr bool can_await = [] {
        if constexpr (detail::declares_awaitable<A>) {
            return true;
        } else if constexpr (detail::declares_not_awaitable<A>) {
            return false;
        } else {
            return awaitable_from<object, std::coroutine_handle<>, await_rvalue>;
        }
    }();
    /// The object looks awaitable (an operator co_await or await_ready) but a probe
    /// cannot await it: the Python side says why, once.
    static constexpr bool await_left_out = !can_await && !detail::declares_not_awaitable<A> && [] {
        return requires(object& o) { o.operator co_await(); } ||
               requires(object& o) { operator co_await(o); } ||
               requires(object& o) { std::move(o).operator co_await(); } ||
               requires(object& o) { o.await_ready(); };
    }();

    /// Bit i set when op code i can run on this target.
    static int capabilities() noexcept {
        int caps = (1 << op_make) | (1 << op_drop) | (1 << op_send);
        if (can_copy) caps |= 1 << op_copy;
        if (can_copy_assign) caps |= 1 << op_copy_assign;
        if (can_move) caps |= 1 << op_move;
        if (can_move_assign) caps |= 1 << op_move_assign;
        if (can_swap) caps |= 1 << op_swap;
        if (detail::has_resume<A>) caps |= 1 << op_resume;
        if (detail::has_touch<A>) caps |= 1 << op_touch;
        if (can_await) caps |= (1 << op_await) | (1 << op_probe);
        if (detail::has_combinators<A>) caps |= 1 << op_make_from;
        if (detail::has_custom_ops<A>) caps |= 1 << op_call;
        if (detail::has_step<A>) caps |= 1 << op_step;
        return caps;
    }

    static const char* describe() {
        static const std::string text = [] {
            std::string s = "{\"factories\": [";
            int i = 0;
            for (const factory& f : A::factories) {
                if (i++) s += ", ";
                s += "{\"name\": \"" + std::string(f.name) + "\", \"min\": " +
                     std::to_string(f.arg_min) + ", \"max\": " + std::to_string(f.arg_max) + "}";
            }
            s += "], \"stack_bytes\": " + std::to_string(detail::stack_bytes<A>());
            s += ", \"has_handle\": ";
            s += detail::has_handle<A> ? "true" : "false";
            s += ", \"has_use_count\": ";
            s += detail::has_use_count<A> ? "true" : "false";
            constexpr rules r = detail::rules_of<A>();
            const std::pair<const char*, bool> flags[] = {
                {"moves_across_threads", r.moves_across_threads},
                {"copies_dropped_across_threads", r.copies_dropped_across_threads},
                {"resume_finished", r.resume_finished},
                {"resume_from_any_thread", r.resume_from_any_thread},
                {"use_after_move", r.use_after_move},
                {"self_copy_assign", r.self_copy_assign},
                {"self_move_assign", r.self_move_assign},
                {"self_swap", r.self_swap},
                {"await_twice", r.await_twice},
                {"await_lvalue", r.await_lvalue},
            };
            s += ", \"rules\": {";
            const char* comma = "";
            for (const auto& [name, value] : flags) {
                s += comma;
                s += "\"" + std::string(name) + "\": " + (value ? "true" : "false");
                comma = ", ";
            }
            s += "}";
            if constexpr (detail::has_combinators<A>) {
                s += ", \"combinators\": " + signatures(A::combinators);
            }
            if constexpr (detail::has_custom_ops<A>) {
                s += ", \"custom_ops\": " + signatures(A::ops);
            }
            s += ", \"lifecycle\": [";
            const char* sep = "";
            if (detail::has_begin<A>) { s += sep; s += "\"begin\""; sep = ", "; }
            if (detail::has_step<A>) { s += sep; s += "\"step\""; sep = ", "; }
            if (detail::has_run_pending<A>) { s += sep; s += "\"run_pending\""; sep = ", "; }
            if (detail::has_end<A>) { s += sep; s += "\"end\""; }
            s += "]";
            s += ", \"await\": \"";
            s += detail::declares_awaitable<A> ? "declared"
                 : can_await                   ? "detected"
                 : await_left_out              ? "left-out"
                                               : "none";
            s += "\"";
            s += ", \"own_allocator\": ";
            s += detail::own_allocator ? "true" : "false";
            s += ", \"compiler\": \"" __VERSION__ "\"}";
            return s;
        }();
        return text.c_str();
    }

    static int run(const int* ops, int n_ints, long long* shared, int shared_words) {
        if (shared == nullptr || shared_words < hw_words + event_words) return err_shared_area;
        if (n_ints < 5 || ops[0] != schedule_magic || (ops[1] != 2 && ops[1] != schedule_version)) {
            return err_bad_header;
        }
        const int header = ops[1] == 2 ? 5 : 6;
        const int n_slots = ops[2], n_threads = ops[3], n_ops = ops[4];
        const int n_preempt = header == 6 && n_ints >= 6 ? ops[5] : 0;
        if (n_slots < 1 || n_slots > max_slots || n_threads < 1 || n_threads > max_threads ||
            n_ops < 0 || n_ops > max_ops || n_preempt < 0 || n_preempt > max_preemptions ||
            n_ints != header + op_words * n_ops + preempt_words * n_preempt) {
            return err_bad_header;
        }
        const int caps = capabilities();
        for (int i = 0; i < n_ops; ++i) {
            if (!valid_op(ops + header + op_words * i, caps, n_slots, n_threads)) return err_bad_op;
        }
        const int* const preempt = ops + header + op_words * n_ops;
        for (int p = 0; p < n_preempt; ++p) {
            const int* e = preempt + preempt_words * p;
            if (e[0] < 0 || e[0] >= n_ops || e[1] < 1 || e[2] < 0 || e[2] >= n_threads ||
                e[2] == ops[header + op_words * e[0] + 1]) {
                return err_bad_op;
            }
        }

        detail::g_shared = shared;
        detail::g_shared_words = shared_words;
        for (int w = 0; w < hw_words; ++w) detail::set_word(w, 0);
        detail::set_word(hw_magic, shared_magic);
        detail::set_word(hw_op_in_flight, -1);
        detail::set_word(hw_capacity, (shared_words - hw_words) / event_words);
        detail::set_word(hw_status, 1);
        detail::install_alloc_hooks();

        s_run.m_ops = ops + header;
        s_run.m_preempt = preempt;
        s_run.m_preempt_count = n_preempt;
        s_run.m_ops_count = n_ops;
        s_run.m_slots = n_slots;
        s_run.m_threads = n_threads;
        start_schedule(n_ops, n_threads);
        (__atomic_store_n)(&s_probe_count, 0, __ATOMIC_RELAXED);
        for (int s = 0; s < max_slots; ++s) (__atomic_store_n)(&s_slots[s].m_live, false, __ATOMIC_RELAXED);
        clear_probes();
        if constexpr (detail::has_begin<A>) A::begin();
        for (int t = 0; t < n_threads; ++t) s_ctx[t].m_tid.store(0, std::memory_order_relaxed);
        clear_threads(n_threads);  // the others wait for a schedule that uses them

        // When the caller asked for it, the calling thread is schedule thread 0 (see
        // run_on_calling_thread); the pool's threads run the others, or all of them. They
        // are started once, before any op, so their start-up allocations are never
        // counted against an op.
        const int first_pooled = s_same_thread ? 1 : 0;
        const int pooled = n_threads - first_pooled;
        s_first_pooled = first_pooled;
        s_fiber_mode = pooled > 0 && first_pooled && fibers_wanted();
#if defined(STRESSCORO_HAS_FIBERS)
        // The explorer under TSan: the other schedule threads are fibers of this one.
        const int rc = s_fiber_mode ? run_on(s_fibers, n_threads) : run_on(s_threads, n_threads);
#else
        const int rc = run_on(s_threads, n_threads);
#endif
        if (rc != 0) return rc;
        if constexpr (detail::has_end<A>) {
            // Memory the library caches until end() and releases there is not a leak;
            // end()'s own allocations are not counted.
            try {
                A::end();
            } catch (...) {
                detail::log_event(ev_exception, n_ops, 0, -1);
            }
        }

        const int probes = (__atomic_load_n)(&s_probe_count, __ATOMIC_RELAXED);
        for (int p = 0; p < probes; ++p) {
            const probe_frame& pr = s_probes[p];
            detail::log_event(ev_probe, n_ops, 0, pr.m_id, pr.m_resumes, pr.m_destroys,
                              pr.m_first_resume_op);
        }
        detail::finish_alloc_tracking(n_ops);
        detail::set_word(hw_op_in_flight, -1);
        detail::set_word(hw_status, 2);
        detail::g_shared = nullptr;
        return 0;
    }

    /// Run schedule thread 0 of every schedule on the calling thread from now on (true),
    /// or every schedule thread on a pool thread (false, the default). The caller's stack
    /// must be as large as a schedule thread's, detail::stack_bytes<A>() +
    /// driver_stack_margin (stresscoro/explore.hpp).
    static void run_on_calling_thread(bool on) noexcept { s_same_thread = on; }

    /// Log what every held object's frame looks like after each op (ev_state, what the
    /// oracle's owner and use-count invariants read; the default), or not: the native
    /// explorer does not read them (stresscoro/explore.hpp, log_has_finding) and runs
    /// again every schedule it stops on with them logged.
    static void log_frame_states(bool on) noexcept { s_log_states = on; }

private:
    static inline bool s_log_states = true;
    static inline bool s_same_thread = false;
    static inline int s_first_pooled = 0;  // the schedule thread pool thread 0 runs

    static constexpr int factory_count() noexcept {
        return static_cast<int>(sizeof(A::factories) / sizeof(A::factories[0]));
    }

    template <class Sig, std::size_t N>
    static std::string signatures(const Sig (&list)[N]) {
        std::string s = "[";
        for (std::size_t i = 0; i < N; ++i) {
            if (i) s += ", ";
            s += "{\"name\": \"" + std::string(list[i].name) + "\", \"inputs\": [";
            const char* sep = "";
            for (pass p : list[i].in) {
                if (p == pass::none) continue;
                s += sep;
                s += p == pass::copy ? "\"copy\"" : p == pass::move ? "\"move\""
                     : p == pass::ref ? "\"ref\"" : "\"consume\"";
                sep = ", ";
            }
            s += "], \"min\": " + std::to_string(list[i].arg_min) +
                 ", \"max\": " + std::to_string(list[i].arg_max) + "}";
        }
        return s + "]";
    }

    template <class Sig, std::size_t N>
    static constexpr int input_count(const Sig (&list)[N], int which) noexcept {
        int n = 0;
        for (pass p : list[which].in) n += p != pass::none;
        return n;
    }

    static constexpr int combinator_count() noexcept {
        if constexpr (detail::has_combinators<A>) {
            return static_cast<int>(std::size(A::combinators));
        } else {
            return 0;
        }
    }

    static constexpr int custom_op_count() noexcept {
        if constexpr (detail::has_custom_ops<A>) {
            return static_cast<int>(std::size(A::ops));
        } else {
            return 0;
        }
    }

    /// The number of input slots of combinator (make_from) or custom op (call) `which`.
    static int inputs_of(int code, int which) noexcept {
        if constexpr (detail::has_combinators<A>) {
            if (code == op_make_from) return input_count(A::combinators, which);
        }
        if constexpr (detail::has_custom_ops<A>) {
            if (code == op_call) return input_count(A::ops, which);
        }
        return 0;
    }

    STRESSCORO_NO_TSAN static bool valid_op(const int* op, int caps, int n_slots, int n_threads) noexcept {
        const int code = op[0];
        if (code <= 0 || code >= op_code_count || !(caps & (1 << code)) || op[1] < 0 ||
            op[1] >= n_threads) {
            return false;
        }
        auto slot_ok = [&](int v) { return v >= 0 && v < n_slots; };
        switch (code) {
            case op_step: return true;
            case op_make: return slot_ok(op[2]) && op[3] >= 0 && op[3] < factory_count();
            case op_send: return slot_ok(op[2]) && op[3] >= 0 && op[3] < n_threads;
            case op_copy: case op_copy_assign: case op_move: case op_move_assign: case op_swap:
            case op_probe:
                return slot_ok(op[2]) && slot_ok(op[3]);
            case op_make_from: {
                if (!slot_ok(op[2]) || op[3] < 0 || op[3] >= combinator_count()) return false;
                const int n = inputs_of(code, op[3]);
                return (n < 1 || slot_ok(op[5])) && (n < 2 ? op[6] == -1 : slot_ok(op[6]));
            }
            case op_call: {
                if (op[2] < 0 || op[2] >= custom_op_count()) return false;
                const int n = inputs_of(code, op[2]);
                return (n < 1 ? op[4] == -1 : slot_ok(op[4])) && (n < 2 ? op[5] == -1 : slot_ok(op[5]));
            }
            default: return slot_ok(op[2]);
        }
    }

    static void pool_body(int index) { take_turns(s_ctx[s_first_pooled + index]); }
    static inline bool s_fiber_mode = false;
#if defined(STRESSCORO_HAS_FIBERS)
    static bool fibers_wanted() noexcept {
        static const bool wanted = detail::schedule_fibers::wanted();
        return wanted;
    }
    static inline detail::schedule_fibers s_fibers{&pool_body};
#else
    static bool fibers_wanted() noexcept { return false; }
#endif

    /// Run the schedule set up in s_run on `pool` (schedule_threads, or schedule_fibers:
    /// the same start, tid, launch and finish), with the calling thread as schedule
    /// thread 0 when s_first_pooled says so.
    template <class Pool>
    static int run_on(Pool& pool, int n_threads) {
        const int first_pooled = s_first_pooled, pooled = n_threads - first_pooled;
        // The driver's own frames sit below the target's on a thread's stack; the margin
        // keeps a schedule that overflows here overflowing in a reproducer, which has
        // fewer. A pool thread's own frames take a page more, so that they never eat the
        // margin.
        if (pooled > 0 && !pool.start(pooled, detail::stack_bytes<A>() + driver_stack_margin +
                                                  pool_frames_allowance)) {
            return err_thread_start;
        }
        if (first_pooled) s_ctx[0].m_tid.store(static_cast<long long>(syscall(SYS_gettid)));
        for (int t = first_pooled; t < n_threads; ++t) {
            s_ctx[t].m_tid.store(pool.tid(t - first_pooled), std::memory_order_relaxed);
        }
        for (int t = 0; t < n_threads; ++t) {
            detail::log_event(ev_thread, -1, t, s_ctx[t].m_tid.load(std::memory_order_relaxed));
        }
        // Sync points are counted only when something may preempt: every other schedule
        // pays one relaxed load per atomic of the target.
        (__atomic_store_n)(&detail::g_sync_hooks, s_sched.m_hooked ? &s_hooks : nullptr, __ATOMIC_RELAXED);
        if (pooled > 0) pool.launch(pooled);
        if (first_pooled) take_turns(s_ctx[0]);
        if (pooled > 0) pool.finish();
        (__atomic_store_n)(&detail::g_sync_hooks, static_cast<detail::sync_hooks*>(nullptr), __ATOMIC_RELAXED);
        return 0;
    }
    static void stop_threads() { s_threads.stop(); }
    static inline detail::schedule_threads s_threads{&pool_body, &stop_threads};

    // How long a thread waits for its turn on the CPU before it sleeps: the other
    // threads' turns are usually a few ops of a few microseconds.
    static constexpr long long turn_spin_ns = 20'000;
    // A thread that passes this many sync points in one item while another thread is
    // half-way through its own is taken to spin on it (a spin lock, a CAS loop waiting
    // for a flag): it gives the CPU to that thread, as a real scheduler eventually would.
    static constexpr int spin_points = 4096;

public:
    /// Count sync points even when no preemption is asked for, in schedules of two or
    /// more threads (the default): item_points() then tells how many each op passed, and
    /// each op that passed some logs ev_points (what a campaign preempts next).
    static void count_sync_points(bool on) noexcept { s_count_points = on; }
    /// Sync points op i passed in the last run (0 when they were not counted).
    static int item_points(int i) noexcept { return s_item_points[i]; }

private:
    static inline bool s_count_points = true;
    static inline int s_item_points[max_ops] = {};

    STRESSCORO_NO_TSAN static int op_thread(int i) noexcept { return s_run.m_ops[op_words * i + 1]; }

    /// Thread t's first item after item `after` (-1: from the start).
    STRESSCORO_NO_TSAN static int next_item_of(int t, int after) noexcept {
        const int n_ops = s_run.m_ops_count;
        for (int i = after + 1; i < n_ops; ++i) {
            if (op_thread(i) == t) return i;
        }
        return after < n_ops + t ? n_ops + t : no_item;
    }

    STRESSCORO_NO_TSAN static void start_schedule(int n_ops, int n_threads) noexcept {
        sched_state& st = s_sched;
        for (int t = 0; t < n_threads; ++t) {
            st.m_next[t] = next_item_of(t, -1);
            st.m_points[t] = 0;
            st.m_in_item[t] = false;
        }
        st.m_hooked = n_threads > 1 && (s_run.m_preempt_count > 0 || s_count_points);
        if (s_count_points) {
            for (int i = 0; i < n_ops; ++i) s_item_points[i] = 0;
        }
        st.m_running.set(pick_default(n_threads));
    }

    /// The thread whose current or next item comes first (the schedule's own order).
    STRESSCORO_NO_TSAN static int pick_default(int n_threads) noexcept {
        int best = all_done, best_item = no_item;
        for (int t = 0; t < n_threads; ++t) {
            if (s_sched.m_next[t] < best_item) {
                best_item = s_sched.m_next[t];
                best = t;
            }
        }
        return best;
    }

    /// The slots an encoded op names (-1 where none); true for an op on no slot that
    /// may touch anything (step, a custom op over no object).
    STRESSCORO_NO_TSAN static bool op_slots(int i, int (&out)[3]) noexcept {
        const int* op = s_run.m_ops + op_words * i;
        out[0] = out[1] = out[2] = -1;
        switch (op[0]) {
            case op_step: return true;
            case op_make: case op_resume: case op_drop: case op_send: case op_touch: case op_await:
                out[0] = op[2];
                return false;
            case op_make_from: out[0] = op[2]; out[1] = op[5]; out[2] = op[6]; return false;
            case op_call: out[0] = op[4]; out[1] = op[5]; return out[0] < 0 && out[1] < 0;
            default: out[0] = op[2]; out[1] = op[3]; return false;
        }
    }

    STRESSCORO_NO_TSAN static bool ops_conflict(int i, int j) noexcept {
        int a[3], b[3];
        if (op_slots(i, a) || op_slots(j, b)) return true;
        for (int x : a) {
            for (int y : b) {
                if (x >= 0 && x == y) return true;
            }
        }
        return false;
    }

    /// Whether thread `to` may run now, while item `item` is half done: it is half-way
    /// through an item itself, or its next op commutes with every op from `item` up to
    /// it (no shared slot, no step), or its next item is its end-of-schedule turn, no
    /// later op sends to it or runs a step, and it is not thread 0 (whose end turn runs
    /// the library's pending work). Running it early then changes no op's inputs.
    STRESSCORO_NO_TSAN static bool may_run_early(int item, int to) noexcept {
        const sched_state& st = s_sched;
        const int n_ops = s_run.m_ops_count;
        const int j = st.m_next[to];
        if (j == no_item) return false;
        if (st.m_in_item[to]) return true;
        if (j < n_ops) {
            for (int k = item; k < j; ++k) {
                if (ops_conflict(k, j)) return false;
            }
            return true;
        }
        if (to == 0) return false;
        for (int k = item + 1; k < n_ops; ++k) {
            const int* op = s_run.m_ops + op_words * k;
            int unused[3];
            if ((op[0] == op_send && op[3] == to) || op_slots(k, unused)) return false;
        }
        return true;
    }

    /// The schedule thread running the caller, or -1 for a thread of the library's own.
    STRESSCORO_NO_TSAN static int current_thread() noexcept {
#if defined(STRESSCORO_HAS_FIBERS)
        if (s_fiber_mode) {
            const int c = s_fibers.current();
            return c == detail::schedule_fibers::main_context ? 0 : c + 1;
        }
#endif
        // No thread_local: its first use in a thread of a loaded module allocates, and
        // that would count against the op in flight.
        const pthread_t self = pthread_self();
        for (int t = 0; t < s_run.m_threads; ++t) {
            if (pthread_equal(s_ctx[t].m_self, self)) return t;
        }
        return -1;
    }

    /// Give the CPU to thread `to`, and return once it is this thread's again.
    STRESSCORO_NO_TSAN static void hand_over(int me, int to) noexcept {
        s_sched.m_running.set(to);
        wait_for_cpu(me);
        // Whoever ran meanwhile armed the shared header for its own op.
        begin(s_sched.m_next[me], me);
    }

    STRESSCORO_NO_TSAN static void wait_for_cpu(int me) noexcept {
        for (;;) {
            const int r = s_sched.m_running.get();
            if (r == me || r == all_done) return;
#if defined(STRESSCORO_HAS_FIBERS)
            if (s_fiber_mode) {  // the calling thread (thread 0) is the main context
                s_fibers.switch_to(r == 0 ? detail::schedule_fibers::main_context : r - 1);
                continue;
            }
#endif
            s_sched.m_running.wait_while(r, turn_spin_ns);
        }
    }

    /// Another thread half-way through an item (the first in schedule order), or -1.
    STRESSCORO_NO_TSAN static int other_in_item(int me) noexcept {
        int best = -1, best_item = no_item;
        for (int t = 0; t < s_run.m_threads; ++t) {
            if (t != me && s_sched.m_in_item[t] && s_sched.m_next[t] < best_item) {
                best_item = s_sched.m_next[t];
                best = t;
            }
        }
        return best;
    }

    STRESSCORO_NO_TSAN static int table_preemption(int item, int point) noexcept {
        const int* e = s_run.m_preempt;
        for (int p = 0; p < s_run.m_preempt_count; ++p, e += preempt_words) {
            if (e[0] == item && e[1] == point) return e[2];
        }
        return -1;
    }

    STRESSCORO_NO_TSAN static void on_sync_point(int kind, void* pc) noexcept {
        const int me = current_thread();
        if (me < 0 || me >= s_run.m_threads || !s_sched.m_in_item[me]) return;
        sched_state& st = s_sched;
        const int item = st.m_next[me];
        const int point = ++st.m_points[me];
        if (item >= s_run.m_ops_count) return;  // end-of-schedule turns are not preempted
        if (s_count_points) s_item_points[item] = point;
        const int to = table_preemption(item, point);
        if (to >= 0 && to != me && to < s_run.m_threads && may_run_early(item, to)) {
            log_preemption(item, me, point, to, kind, pc);
            hand_over(me, to);
            return;
        }
        if (point % spin_points == 0) {
            const int holder = other_in_item(me);
            if (holder >= 0) hand_over(me, holder);
        }
    }

    /// A lock another schedule thread holds: let the thread half-way through an item
    /// (the holder) run; false when there is none, and the caller blocks for real.
    STRESSCORO_NO_TSAN static bool on_blocked() noexcept {
        const int me = current_thread();
        if (me < 0 || me >= s_run.m_threads || !s_sched.m_in_item[me]) return false;
        const int holder = other_in_item(me);
        if (holder < 0) return false;
        hand_over(me, holder);
        return true;
    }

    /// ev_preempt, then ev_preempt_stack with the next return addresses up the stack
    /// (the unwinder's, which needs no frame pointers).
    STRESSCORO_NO_TSAN static void log_preemption(int item, int me, int point, int to, int kind,
                                                  void* pc) noexcept {
        // The unwinder and dladdr may allocate on first use: the harness's, not the op's.
        detail::arm(-1, me);
        detail::log_event(ev_preempt, item, me, point, to, kind, code_offset(pc));
        struct walk {
            void* m_pc;
            void* m_ips[16];
            int m_n = 0;
        } w{pc, {}};
        _Unwind_Backtrace([](_Unwind_Context* c, void* arg) -> _Unwind_Reason_Code {
            auto& self = *static_cast<walk*>(arg);
            self.m_ips[self.m_n++] = reinterpret_cast<void*>(_Unwind_GetIP(c));
            return self.m_n < 16 ? _URC_NO_REASON : _URC_END_OF_STACK;
        }, &w);
        long long up[4] = {0, 0, 0, 0};
        for (int i = 0; i < w.m_n; ++i) {
            if (w.m_ips[i] != pc) continue;  // the frames above the sync point's
            for (int k = 0; k < 4 && i + 1 + k < w.m_n; ++k) up[k] = code_offset(w.m_ips[i + 1 + k]);
            break;
        }
        detail::log_event(ev_preempt_stack, item, me, up[0], up[1], up[2], up[3]);
        detail::arm(item, me);
    }

    /// A code address as an offset into this binary (the module or the explorer), which
    /// addr2line reads; 0 for code elsewhere (a shared library of the target's own).
    STRESSCORO_NO_TSAN static long long code_offset(void* pc) noexcept {
        Dl_info here{}, there{};
        if (pc == nullptr || dladdr(reinterpret_cast<void*>(&code_offset), &here) == 0 ||
            dladdr(pc, &there) == 0 || there.dli_fbase != here.dli_fbase) {
            return 0;
        }
        return static_cast<long long>(reinterpret_cast<std::uintptr_t>(pc) -
                                      reinterpret_cast<std::uintptr_t>(there.dli_fbase));
    }

    static inline detail::sync_hooks s_hooks{&on_sync_point, &on_blocked};

    /// This thread's next item once it holds the CPU, or -1 when the schedule is over.
    /// The scheduler's words are read and written here and in end_item, out of TSan's
    /// view: how the CPU passes must not show in its reports.
    STRESSCORO_NO_TSAN static int begin_item(int me) noexcept {
        wait_for_cpu(me);
        if (s_sched.m_running.get() == all_done) return -1;
        s_sched.m_points[me] = 0;
        s_sched.m_in_item[me] = true;
        return s_sched.m_next[me];
    }

    STRESSCORO_NO_TSAN static void set_self(thread_ctx& ctx) noexcept { ctx.m_self = pthread_self(); }

    /// Item done: pass the CPU on in the schedule's order.
    STRESSCORO_NO_TSAN static void end_item(int me, int item) noexcept {
        s_sched.m_in_item[me] = false;
        if (s_count_points && item < s_run.m_ops_count && s_sched.m_points[me] > 0) {
            detail::log_event(ev_points, item, me, s_sched.m_points[me]);
        }
        s_sched.m_next[me] = next_item_of(me, item);
        s_sched.m_running.set(pick_default(s_run.m_threads));
    }

    static void take_turns(thread_ctx& ctx) {
        const int me = ctx.m_index;
        const int n_ops = s_run.m_ops_count;
        const int* const ops = s_run.m_ops;
        set_self(ctx);
        for (int item; (item = begin_item(me)) >= 0;) {
            collect_mail(ctx);  // a send to oneself is legal, if pointless
            if (item < n_ops) {
                run_op(ctx, item, ops + op_words * item);
            } else {
                if (item == n_ops) finish_pending(ctx, n_ops);
                drop_remaining(ctx, n_ops);
            }
            end_item(me, item);
        }
    }

    static void collect_mail(thread_ctx& ctx) {
        mailbox& box = s_mail[ctx.m_index];
        // Nothing sent since this thread last emptied its box: the mutex was last released
        // by this thread, so taking it would order nothing (and costs a lock under TSan).
        if (detail::quiet_get(box.m_count) == 0) return;
        (pthread_mutex_lock)(&box.m_mutex);
        const int n = detail::quiet_get(box.m_count);
        for (int i = 0; i < n; ++i) ctx.m_holds[box.m_slots[i]] = true;
        detail::quiet_set(box.m_count, 0);
        (pthread_mutex_unlock)(&box.m_mutex);
    }

    // Harness bookkeeping around every op, unseen by TSan (see clear_probes).
    STRESSCORO_NO_TSAN static void begin(int op, int thread) noexcept {
        detail::set_word(hw_op_in_flight, op);
        detail::set_word(hw_thread_in_flight, thread);
        // A thread's first use of the probe's thread-local word allocates; with another
        // op half done (a preemption) that op is still armed, and it is not its allocation.
        detail::arm(-1, thread);
        detail::set_probe_op(op);
        detail::arm(op, thread);
    }

    STRESSCORO_NO_TSAN static void end(int op, int thread) noexcept {
        detail::arm(-1, thread);
        detail::log_event(ev_op_done, op, thread);
    }

    static bool live(int s) noexcept { return (__atomic_load_n)(&s_slots[s].m_live, __ATOMIC_RELAXED); }

    static void destroy(int s) {
        s_slots[s].get().~object();
        (__atomic_store_n)(&s_slots[s].m_live, false, __ATOMIC_RELAXED);
    }

    /// Empty slot s: destroy its object, or free its probe (logging what the probe saw).
    static void clear(int s) {
        if (live(s)) destroy(s);
        if (probe_frame* p = s_slots[s].m_probe) {
            s_slots[s].m_probe = nullptr;
            detail::log_event(ev_probe, p->m_op, 0, p->m_id, p->m_resumes, p->m_destroys,
                              p->m_first_resume_op);
            free_probe(p);
        }
    }

    template <class F>
    static void construct(int s, F&& make) {
        ::new (static_cast<void*>(s_slots[s].m_bytes)) object(make());
        (__atomic_store_n)(&s_slots[s].m_live, true, __ATOMIC_RELAXED);
        s_slots[s].m_born = detail::word(hw_op_in_flight);
    }

    // The driver's bookkeeping between schedules, and its reads of the schedule, are
    // nothing TSan has to check (no target memory; every schedule starts after the edge
    // a thread start gives): uninstrumented, they leave the time to the target's own ops.
    STRESSCORO_NO_TSAN static void clear_probes() noexcept {
        for (int s = 0; s < max_slots; ++s) s_slots[s].m_probe = nullptr;
    }
    STRESSCORO_NO_TSAN static void clear_threads(int n_threads) noexcept {
        for (int t = 0; t < n_threads; ++t) {
            s_ctx[t].m_index = t;
            for (bool& h : s_ctx[t].m_holds) h = false;
            s_mail[t].m_count = 0;
        }
    }
    STRESSCORO_NO_TSAN static void read_op(const int* op, int* words) noexcept {
        for (int w = 0; w < op_words; ++w) words[w] = op[w];
    }

    static void run_op(thread_ctx& ctx, int index, const int* op_in_schedule) {
        int op[op_words];
        read_op(op_in_schedule, op);
        const int code = op[0], thread = op[1];
        begin(index, thread);
        try {
            apply(ctx, index, code, thread, op + 2);
        } catch (...) {
            detail::log_event(ev_exception, index, thread, op[2]);
        }
        if (s_log_states) log_states(index, thread);
        end(index, thread);
    }

    // Each op runs in a function of its own name, never inlined, so a sanitizer stack
    // shows which op made an access (the oracle reads "do_touch" as a touch op).
#define STRESSCORO_OP_FRAME __attribute__((noinline))

    static void apply(thread_ctx& ctx, int index, int code, int thread, const int* args) {
        const op_ctx c{ctx, index, thread};
        const int x = args[0], y = args[1], z = args[2];
        switch (code) {
            case op_make: return do_make(c, x, y, z);
            case op_copy: return do_copy(c, x, y);
            case op_copy_assign: return do_copy_assign(c, x, y);
            case op_move: return do_move(c, x, y);
            case op_move_assign: return do_move_assign(c, x, y);
            case op_swap: return do_swap(c, x, y);
            case op_resume: return do_resume(c, x);
            case op_drop: return do_drop(c, x);
            case op_send: return do_send(c, x, y);
            case op_touch: return do_touch(c, x);
            case op_await: return do_await(c, x);
            case op_make_from: return do_make_from(c, x, y, z, args[3], args[4]);
            case op_call: return do_call(c, x, y, z, args[3]);
            case op_step: return do_step(c);
            case op_probe: return do_probe(c, x, y);
            default: return;
        }
    }

    struct op_ctx {
        thread_ctx& ctx;
        int index;
        int thread;
    };

    static void skip(const op_ctx& c, int s) { detail::log_event(ev_skip, c.index, c.thread, s, 1); }

    STRESSCORO_OP_FRAME static void do_make(const op_ctx& c, int x, int f, int arg) {
        clear(x);
        construct(x, [&] { return A::make(f, clamp_arg(f, arg)); });
        c.ctx.m_holds[x] = true;
    }

    STRESSCORO_OP_FRAME static void do_copy(const op_ctx& c, int x, int y) {
        if constexpr (can_copy) {
            if (!live(x) || x == y) return skip(c, x);
            clear(y);
            construct(y, [&]() -> object { return object(s_slots[x].get()); });
            c.ctx.m_holds[y] = true;
        }
    }

    STRESSCORO_OP_FRAME static void do_copy_assign(const op_ctx& c, int x, int y) {
        if constexpr (can_copy_assign) {
            if (!live(x) || !live(y)) return skip(c, live(x) ? y : x);
            s_slots[y].get() = s_slots[x].get();
        }
    }

    STRESSCORO_OP_FRAME static void do_move(const op_ctx& c, int x, int y) {
        if constexpr (can_move) {
            if (!live(x) || x == y) return skip(c, x);
            clear(y);
            construct(y, [&]() -> object { return object(std::move(s_slots[x].get())); });
            c.ctx.m_holds[y] = true;
        }
    }

    STRESSCORO_OP_FRAME static void do_move_assign(const op_ctx& c, int x, int y) {
        if constexpr (can_move_assign) {
            if (!live(x) || !live(y)) return skip(c, x);
            if (x == y && !detail::rules_of<A>().self_move_assign) return skip(c, x);
            s_slots[y].get() = std::move(s_slots[x].get());
        }
    }

    STRESSCORO_OP_FRAME static void do_swap(const op_ctx& c, int x, int y) {
        if constexpr (can_swap) {
            if (!live(x) || !live(y)) return skip(c, live(x) ? y : x);
            using std::swap;
            swap(s_slots[x].get(), s_slots[y].get());
        }
    }

    STRESSCORO_OP_FRAME static void do_resume(const op_ctx& c, int x) {
        if constexpr (detail::has_resume<A>) {
            if (!live(x)) return skip(c, x);
            if constexpr (detail::has_handle<A>) {
                long long state = 0;
                {
                    detail::harness_reads quiet;
                    std::coroutine_handle<> h = A::handle(s_slots[x].get());
                    state = frame_state(h);
                    detail::log_event(ev_resume, c.index, c.thread, x, address_of(h), state);
                }
                // A library that forbids resuming a finished coroutine is not asked to.
                if (state == 1 && !detail::rules_of<A>().resume_finished) {
                    return detail::log_event(ev_skip, c.index, c.thread, x, 2);
                }
            }
            A::resume(s_slots[x].get());
        }
    }

    STRESSCORO_OP_FRAME static void do_drop(const op_ctx& c, int x) {
        if (!live(x) && s_slots[x].m_probe == nullptr) return skip(c, x);
        clear(x);
    }

    STRESSCORO_OP_FRAME static void do_send(const op_ctx& c, int x, int to) {
        if (!live(x) && s_slots[x].m_probe == nullptr) return skip(c, x);
        c.ctx.m_holds[x] = false;
        mailbox& box = s_mail[to];
        (pthread_mutex_lock)(&box.m_mutex);  // the hand-off's happens-before edge
        // The count is a quiet word (collect_mail peeks at it without the lock); Clang's
        // TSan sees quiet words as atomics, so a plain write here would be a race to it.
        const int n = detail::quiet_get(box.m_count);
        box.m_slots[n] = x;
        detail::quiet_set(box.m_count, n + 1);
        (pthread_mutex_unlock)(&box.m_mutex);
    }

    STRESSCORO_OP_FRAME static void do_touch(const op_ctx& c, int x) {
        if constexpr (detail::has_touch<A>) {
            if (!live(x)) return skip(c, x);
            A::touch(s_slots[x].get());
        }
    }

    STRESSCORO_OP_FRAME static void do_await(const op_ctx& c, int x) {
        if constexpr (can_await) {
            if (!live(x)) return skip(c, x);
            await_with_probe(s_slots[x].get());
        }
    }

    /// The objects in slots `ins` as declared by `in`; false if one is empty.
    static bool gather(const pass (&in)[2], const int* ins, object** out, int& n) noexcept {
        n = 0;
        for (int i = 0; i < 2; ++i) {
            if (in[i] == pass::none) continue;
            if (!live(ins[i])) return false;
            out[n++] = &s_slots[ins[i]].get();
        }
        return true;
    }

    /// After a combinator or custom op: inputs it consumed leave empty slots.
    static void release_consumed(const pass (&in)[2], const int* ins) {
        for (int i = 0; i < 2; ++i) {
            if (in[i] == pass::consume && live(ins[i])) destroy(ins[i]);
        }
    }

    STRESSCORO_OP_FRAME static void do_make_from(const op_ctx& c, int dst, int which, int arg,
                                                 int src, int src2) {
        if constexpr (detail::has_combinators<A>) {
            const combinator& k = A::combinators[which];
            const int ins[2] = {src, src2};
            object* in[2] = {nullptr, nullptr};
            int n = 0;
            if (!gather(k.in, ins, in, n) || dst == src || dst == src2) return skip(c, src);
            arg = clamp(arg, k.arg_min, k.arg_max);
            clear(dst);
            construct(dst, [&] { return A::combine(which, arg, inputs<object>(in[0], in[1], n)); });
            c.ctx.m_holds[dst] = true;
            release_consumed(k.in, ins);
        }
    }

    STRESSCORO_OP_FRAME static void do_call(const op_ctx& c, int which, int arg, int x, int y) {
        if constexpr (detail::has_custom_ops<A>) {
            const custom_op& k = A::ops[which];
            const int ins[2] = {x, y};
            object* in[2] = {nullptr, nullptr};
            int n = 0;
            if (!gather(k.in, ins, in, n)) return skip(c, x);
            A::apply(which, clamp(arg, k.arg_min, k.arg_max), inputs<object>(in[0], in[1], n));
            release_consumed(k.in, ins);
        }
    }

    STRESSCORO_OP_FRAME static void do_step(const op_ctx&) {
        if constexpr (detail::has_step<A>) A::step();
    }

    STRESSCORO_OP_FRAME static void do_probe(const op_ctx& c, int dst, int src) {
        if constexpr (can_await) {
            if (!live(src) || dst == src) return skip(c, src);
            clear(dst);
            void* child = nullptr;
            if constexpr (detail::has_handle<A>) {
                detail::harness_reads quiet;
                child = A::handle(s_slots[src].get()).address();
            }
            const int id = (__atomic_fetch_add)(&s_probe_count, 1, __ATOMIC_RELAXED);
            probe_frame* p = await_in_new_probe<await_rvalue>(s_slots[src].get(), id, c.index);
            p->m_child = child;
            s_slots[dst].m_probe = p;
            s_slots[dst].m_born = c.index;
            c.ctx.m_holds[dst] = true;
        }
    }

    static int clamp(int v, int lo, int hi) noexcept { return v < lo ? lo : v > hi ? hi : v; }

    static int clamp_arg(int f, int arg) noexcept {
        const factory& fac = A::factories[f];
        return arg < fac.arg_min ? fac.arg_min : arg > fac.arg_max ? fac.arg_max : arg;
    }

    static void await_with_probe(object& value) {
        const int id = (__atomic_fetch_add)(&s_probe_count, 1, __ATOMIC_RELAXED);
        init_probe(s_probes[id], id);
        await_from<await_rvalue>(value, s_probes[id]);
    }

    static long long address_of(std::coroutine_handle<> h) noexcept {
        return static_cast<long long>(reinterpret_cast<std::uintptr_t>(h.address()));
    }

    /// True when the frame behind `h` is known to be freed. The driver must never read
    /// a freed frame itself, or ASan would blame the harness for the target's bug.
    static bool frame_freed(std::coroutine_handle<> h) noexcept {
        if constexpr (detail::own_allocator) {
            const detail::alloc_entry* e =
                detail::find_alloc(reinterpret_cast<std::uintptr_t>(h.address()));
            return e != nullptr && e->freed;
        } else {
#if defined(STRESSCORO_ASAN)
            return __asan_address_is_poisoned(h.address()) != 0;
#else
            return false;
#endif
        }
    }

    /// 0 suspended, 1 done, 2 freed (frame_state_* in stresscoro/oracle.py).
    static long long frame_state(std::coroutine_handle<> h) noexcept {
        if (!h) return 0;
        if (frame_freed(h)) return 2;
        return h.done() ? 1 : 0;
    }

    static void log_states(int index, int thread) {
        if constexpr (detail::has_handle<A> || detail::has_use_count<A>) {
            detail::harness_reads quiet;
            for (int s = 0; s < s_run.m_slots; ++s) {
                if (!live(s) || !s_ctx[thread].m_holds[s]) continue;
                object& o = s_slots[s].get();
                long long addr = 0, count = -1, done = 0;
                if constexpr (detail::has_handle<A>) {
                    std::coroutine_handle<> h = A::handle(o);
                    addr = address_of(h);
                    done = frame_state(h);
                }
                if constexpr (detail::has_use_count<A>) {
                    if (done != 2) count = A::use_count(o);  // never read a freed frame
                }
                detail::log_event(ev_state, index, thread, s, addr, count, done);
            }
        }
    }

    /// The first end-of-schedule turn: the library runs what it has ready, then each
    /// probe whose child finished but that was never resumed is a lost continuation
    /// (checked only where handle() names the child's frame and a live slot owns it,
    /// so the driver never reads a freed frame).
    STRESSCORO_OP_FRAME static void finish_pending(thread_ctx& ctx, int n_ops) {
        if constexpr (detail::has_run_pending<A>) {
            begin(n_ops, ctx.m_index);
            try {
                A::run_pending();
            } catch (...) {
                detail::log_event(ev_exception, n_ops, ctx.m_index, -1);
            }
            end(n_ops, ctx.m_index);
        }
        if constexpr (detail::has_handle<A>) {
            detail::harness_reads quiet;
            for (int s = 0; s < s_run.m_slots; ++s) {
                const probe_frame* p = s_slots[s].m_probe;
                if (p == nullptr || p->m_resumes > 0 || p->m_child == nullptr) continue;
                for (int o = 0; o < s_run.m_slots; ++o) {
                    if (!live(o)) continue;
                    std::coroutine_handle<> h = A::handle(s_slots[o].get());
                    if (h && h.address() == p->m_child && frame_state(h) == 1) {
                        detail::log_event(ev_lost, p->m_op, ctx.m_index, s, address_of(h));
                        break;
                    }
                }
            }
        }
    }

    /// Drop what this thread holds, newest first (by the op that constructed each slot's
    /// content, ties by slot number), as C++ destroys locals: an object that refers to
    /// another (a combinator's lvalue input, a probe's awaited object) goes before it.
    STRESSCORO_OP_FRAME static void drop_remaining(thread_ctx& ctx, int n_ops) {
        detail::log_event(ev_end, n_ops, ctx.m_index);
        int order[max_slots];
        int n = 0;
        for (int s = 0; s < s_run.m_slots; ++s) {
            if (ctx.m_holds[s] && (live(s) || s_slots[s].m_probe != nullptr)) order[n++] = s;
        }
        for (int i = 1; i < n; ++i) {  // insertion sort: born descending, slot ascending
            for (int j = i; j > 0 && s_slots[order[j]].m_born > s_slots[order[j - 1]].m_born; --j) {
                std::swap(order[j], order[j - 1]);
            }
        }
        for (int k = 0; k < n; ++k) {
            const int s = order[k];
            begin(n_ops, ctx.m_index);
            try {
                clear(s);
            } catch (...) {
                detail::log_event(ev_exception, n_ops, ctx.m_index, s);
            }
            end(n_ops, ctx.m_index);
        }
    }
};

}  // namespace stresscoro

#endif  // STRESSCORO_DRIVER_HPP_INCLUDED
