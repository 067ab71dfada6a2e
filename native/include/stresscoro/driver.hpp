// The driver: runs one encoded schedule against an adapter's object type in one call.
//
// Invariants the driver keeps:
// - Ops run in exactly the schedule's order, each on its own schedule thread. Threads
//   take turns through a relaxed atomic counter, which gives ThreadSanitizer no
//   happens-before edge: only the target's synchronisation (and `send`, which goes
//   through a mutex like a real hand-off queue) orders one thread's work after another's.
// - The header of the shared area always names the op in flight, so a crash can be
//   attributed to an op by the parent.
// - After the last op every live slot is dropped by the thread that holds it (threads
//   in order, slots ascending), then allocation accounting reports what is left.
//
// The encoded schedule (stresscoro/schedule.py writes it):
//     magic, version, slots, threads, ops, then per op: code, thread, x, y, z
#ifndef STRESSCORO_DRIVER_HPP_INCLUDED
#define STRESSCORO_DRIVER_HPP_INCLUDED

#include <stresscoro/detail/config.hpp>

#include <stresscoro/adapter.hpp>
#include <stresscoro/detail/alloc_track.hpp>
#include <stresscoro/detail/event_log.hpp>
#include <stresscoro/probe.hpp>

#if defined(STRESSCORO_ASAN)
extern "C" int __asan_address_is_poisoned(void const volatile* address);
#endif
#if defined(STRESSCORO_TSAN)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif
#include <pthread.h>
#include <sched.h>
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
    op_await = 11,       // slot: a probe awaits the object
    op_code_count = 12,
};

inline constexpr int schedule_magic = 0x5343;
inline constexpr int schedule_version = 1;
inline constexpr int max_slots = 16;
inline constexpr int max_threads = 8;
inline constexpr int max_ops = 4096;
inline constexpr std::size_t driver_stack_margin = 64 * 1024;

// Negative return codes of run(); stresscoro/worker.py names them.
enum run_error : int {
    err_bad_header = -1,
    err_bad_op = -2,
    err_shared_area = -3,
    err_thread_start = -4,
};

namespace detail {

inline void spin_pause() noexcept { sched_yield(); }

// The turn-taking words are read and written outside TSan's view entirely. Relaxed
// atomics would already create no happens-before edge, but TSan still counts them as
// events, and a spin loop's count varies from run to run: that would perturb TSan's
// shadow state (which of four past accesses a cell keeps) and make a race reported in
// one run missed in the next. Hidden, the same schedule gives the same report.
STRESSCORO_NO_TSAN inline int quiet_load(const int& word) noexcept {
    return __atomic_load_n(&word, __ATOMIC_RELAXED);
}
STRESSCORO_NO_TSAN inline void quiet_store(int& word, int value) noexcept {
    __atomic_store_n(&word, value, __ATOMIC_RELAXED);
}
STRESSCORO_NO_TSAN inline void quiet_add(int& word, int value) noexcept {
    __atomic_fetch_add(&word, value, __ATOMIC_RELAXED);
}

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
        // Harness bookkeeping is atomic so that a schedule that breaks thread
        // ownership is blamed on the target's own accesses, never on ours.
        std::atomic<bool> m_live{false};
        object& get() noexcept { return *std::launder(reinterpret_cast<object*>(m_bytes)); }
    };

    struct mailbox {
        std::mutex m_mutex;
        int m_slots[max_slots];
        int m_count = 0;
    };

    struct thread_ctx {
        int m_index = 0;
        std::atomic<long long> m_tid{0};  // the OS thread id, which sanitizer reports print
        bool m_holds[max_slots] = {};
    };

    struct run_state {
        const int* m_ops = nullptr;
        int m_ops_count = 0;
        int m_slots = 0;
        int m_threads = 0;
        int m_turn = 0;   // only through detail::quiet_*
        int m_ready = 0;
        int m_go = 0;
    };

    static inline slot s_slots[max_slots];
    static inline mailbox s_mail[max_threads];
    static inline probe_frame s_probes[max_ops];
    static inline std::atomic<int> s_probe_count{0};
    static inline run_state s_run;
    static inline thread_ctx s_ctx[max_threads];

public:
    static constexpr bool can_copy = std::is_copy_constructible_v<object>;
    static constexpr bool can_copy_assign = std::is_copy_assignable_v<object>;
    static constexpr bool can_move = std::is_move_constructible_v<object>;
    static constexpr bool can_move_assign = std::is_move_assignable_v<object>;
    static constexpr bool can_swap = std::is_swappable_v<object>;
    static constexpr bool can_await = [] {
        if constexpr (detail::declares_awaitable<A>) {
            return lvalue_awaitable<object>;
        } else {
            return false;
        }
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
        if (can_await) caps |= 1 << op_await;
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
            s += ", \"rules\": {\"moves_across_threads\": ";
            s += r.moves_across_threads ? "true" : "false";
            s += ", \"copies_dropped_across_threads\": ";
            s += r.copies_dropped_across_threads ? "true" : "false";
            s += ", \"resume_finished\": ";
            s += r.resume_finished ? "true" : "false";
            s += ", \"resume_from_any_thread\": ";
            s += r.resume_from_any_thread ? "true" : "false";
            s += "}";
            s += ", \"own_allocator\": ";
            s += detail::own_allocator ? "true" : "false";
            s += ", \"compiler\": \"" __VERSION__ "\"}";
            return s;
        }();
        return text.c_str();
    }

    static int run(const int* ops, int n_ints, long long* shared, int shared_words) {
        if (shared == nullptr || shared_words < hw_words + event_words) return err_shared_area;
        if (n_ints < 5 || ops[0] != schedule_magic || ops[1] != schedule_version) {
            return err_bad_header;
        }
        const int n_slots = ops[2], n_threads = ops[3], n_ops = ops[4];
        if (n_slots < 1 || n_slots > max_slots || n_threads < 1 || n_threads > max_threads ||
            n_ops < 0 || n_ops > max_ops || n_ints != 5 + 5 * n_ops) {
            return err_bad_header;
        }
        const int caps = capabilities();
        for (int i = 0; i < n_ops; ++i) {
            const int* op = ops + 5 + 5 * i;
            if (op[0] <= 0 || op[0] >= op_code_count || !(caps & (1 << op[0])) || op[1] < 0 ||
                op[1] >= n_threads || op[2] < 0 || op[2] >= n_slots) {
                return err_bad_op;
            }
            const bool two_slots = op[0] >= op_copy && op[0] <= op_swap;
            if (two_slots && (op[3] < 0 || op[3] >= n_slots)) return err_bad_op;
            if (op[0] == op_send && (op[3] < 0 || op[3] >= n_threads)) return err_bad_op;
            if (op[0] == op_make && (op[3] < 0 || op[3] >= factory_count())) return err_bad_op;
        }

        detail::g_shared = shared;
        detail::g_shared_words = shared_words;
        for (int w = 0; w < hw_words; ++w) detail::set_word(w, 0);
        detail::set_word(hw_magic, shared_magic);
        detail::set_word(hw_op_in_flight, -1);
        detail::set_word(hw_capacity, (shared_words - hw_words) / event_words);
        detail::set_word(hw_status, 1);
        detail::install_alloc_hooks();

        s_run.m_ops = ops + 5;
        s_run.m_ops_count = n_ops;
        s_run.m_slots = n_slots;
        s_run.m_threads = n_threads;
        detail::quiet_store(s_run.m_turn, 0);
        detail::quiet_store(s_run.m_ready, 0);
        detail::quiet_store(s_run.m_go, 0);
        s_probe_count.store(0, std::memory_order_relaxed);
        for (int s = 0; s < max_slots; ++s) s_slots[s].m_live.store(false, std::memory_order_relaxed);
        for (int t = 0; t < max_threads; ++t) {
            s_ctx[t].m_index = t;
            s_ctx[t].m_tid.store(0, std::memory_order_relaxed);
            for (bool& h : s_ctx[t].m_holds) h = false;
            s_mail[t].m_count = 0;
        }

        pthread_attr_t attr;
        pthread_attr_init(&attr);
        // The driver's own frames sit below the target's on this stack; the margin keeps
        // a schedule that overflows here overflowing in a reproducer, which has fewer.
        pthread_attr_setstacksize(&attr, detail::stack_bytes<A>() + driver_stack_margin);
        pthread_t threads[max_threads];
        int started = 0;
        for (; started < n_threads; ++started) {
            if (pthread_create(&threads[started], &attr, &thread_main, &s_ctx[started]) != 0) break;
        }
        pthread_attr_destroy(&attr);
        if (started < n_threads) {
            // Threads already started wait for m_go; release them with nothing to do.
            detail::quiet_store(s_run.m_turn, n_ops + n_threads);
            detail::quiet_store(s_run.m_go, 1);
            for (int t = 0; t < started; ++t) pthread_join(threads[t], nullptr);
            return err_thread_start;
        }
        // Every thread is running before the first op, so thread start-up allocations
        // are never counted against an op.
        while (detail::quiet_load(s_run.m_ready) < n_threads) detail::spin_pause();
        for (int t = 0; t < n_threads; ++t) {
            detail::log_event(ev_thread, -1, t, s_ctx[t].m_tid.load(std::memory_order_relaxed));
        }
        detail::quiet_store(s_run.m_go, 1);
        for (int t = 0; t < n_threads; ++t) pthread_join(threads[t], nullptr);

        const int probes = s_probe_count.load(std::memory_order_relaxed);
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

private:
    static constexpr int factory_count() noexcept {
        return static_cast<int>(sizeof(A::factories) / sizeof(A::factories[0]));
    }

    static void* thread_main(void* arg) {
        thread_ctx& ctx = *static_cast<thread_ctx*>(arg);
        ctx.m_tid.store(static_cast<long long>(syscall(SYS_gettid)), std::memory_order_relaxed);
        detail::quiet_add(s_run.m_ready, 1);
        while (!detail::quiet_load(s_run.m_go)) detail::spin_pause();
        const int n_ops = s_run.m_ops_count;
        const int last_turn = n_ops + s_run.m_threads;  // one end-of-schedule turn per thread
        for (;;) {
            int turn = detail::quiet_load(s_run.m_turn);
            if (turn >= last_turn) break;
            const int owner = turn < n_ops ? s_run.m_ops[5 * turn + 1] : turn - n_ops;
            if (owner != ctx.m_index) {
                detail::spin_pause();
                continue;
            }
            collect_mail(ctx);  // a send to oneself is legal, if pointless
            if (turn < n_ops) {
                run_op(ctx, turn, s_run.m_ops + 5 * turn);
            } else {
                drop_remaining(ctx, n_ops);
            }
            detail::quiet_store(s_run.m_turn, turn + 1);
        }
        return nullptr;
    }

    static void collect_mail(thread_ctx& ctx) {
        mailbox& box = s_mail[ctx.m_index];
        std::lock_guard<std::mutex> lock(box.m_mutex);
        for (int i = 0; i < box.m_count; ++i) ctx.m_holds[box.m_slots[i]] = true;
        box.m_count = 0;
    }

    static void begin(int op, int thread) noexcept {
        detail::set_word(hw_op_in_flight, op);
        detail::set_word(hw_thread_in_flight, thread);
        detail::t_probe_op = op;
        detail::g_armed_thread.store(thread, std::memory_order_relaxed);
        detail::g_armed_op.store(op, std::memory_order_relaxed);
    }

    static void end(int op, int thread) noexcept {
        detail::g_armed_op.store(-1, std::memory_order_relaxed);
        detail::log_event(ev_op_done, op, thread);
    }

    static bool live(int s) noexcept { return s_slots[s].m_live.load(std::memory_order_relaxed); }

    static void destroy(int s) {
        s_slots[s].get().~object();
        s_slots[s].m_live.store(false, std::memory_order_relaxed);
    }

    template <class F>
    static void construct(int s, F&& make) {
        ::new (static_cast<void*>(s_slots[s].m_bytes)) object(make());
        s_slots[s].m_live.store(true, std::memory_order_relaxed);
    }

    static void run_op(thread_ctx& ctx, int index, const int* op) {
        const int code = op[0], thread = op[1], x = op[2], y = op[3], z = op[4];
        begin(index, thread);
        try {
            apply(ctx, index, code, thread, x, y, z);
        } catch (...) {
            detail::log_event(ev_exception, index, thread, x);
        }
        log_states(index, thread);
        end(index, thread);
    }

    // Each op runs in a function of its own name, never inlined, so a sanitizer stack
    // shows which op made an access (the oracle reads "do_touch" as a touch op).
#define STRESSCORO_OP_FRAME __attribute__((noinline))

    static void apply(thread_ctx& ctx, int index, int code, int thread, int x, int y, int z) {
        const op_ctx c{ctx, index, thread};
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
        if (live(x)) destroy(x);
        construct(x, [&] { return A::make(f, clamp_arg(f, arg)); });
        c.ctx.m_holds[x] = true;
    }

    STRESSCORO_OP_FRAME static void do_copy(const op_ctx& c, int x, int y) {
        if constexpr (can_copy) {
            if (!live(x) || x == y) return skip(c, x);
            if (live(y)) destroy(y);
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
            if (live(y)) destroy(y);
            construct(y, [&]() -> object { return object(std::move(s_slots[x].get())); });
            c.ctx.m_holds[y] = true;
        }
    }

    STRESSCORO_OP_FRAME static void do_move_assign(const op_ctx& c, int x, int y) {
        if constexpr (can_move_assign) {
            if (!live(x) || !live(y) || x == y) return skip(c, x);
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
        if (!live(x)) return skip(c, x);
        destroy(x);
    }

    STRESSCORO_OP_FRAME static void do_send(const op_ctx& c, int x, int to) {
        if (!live(x)) return skip(c, x);
        c.ctx.m_holds[x] = false;
        mailbox& box = s_mail[to];
        std::lock_guard<std::mutex> lock(box.m_mutex);  // the hand-off's happens-before edge
        box.m_slots[box.m_count++] = x;
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

    static int clamp_arg(int f, int arg) noexcept {
        const factory& fac = A::factories[f];
        return arg < fac.arg_min ? fac.arg_min : arg > fac.arg_max ? fac.arg_max : arg;
    }

    static void await_with_probe(object& value) {
        const int id = s_probe_count.fetch_add(1, std::memory_order_relaxed);
        init_probe(s_probes[id], id);
        await_from(value, s_probes[id]);
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

    STRESSCORO_OP_FRAME static void drop_remaining(thread_ctx& ctx, int n_ops) {
        detail::log_event(ev_end, n_ops, ctx.m_index);
        for (int s = 0; s < s_run.m_slots; ++s) {
            if (!ctx.m_holds[s] || !live(s)) continue;
            begin(n_ops, ctx.m_index);
            try {
                destroy(s);
            } catch (...) {
                detail::log_event(ev_exception, n_ops, ctx.m_index, s);
            }
            end(n_ops, ctx.m_index);
        }
    }
};

}  // namespace stresscoro

#endif  // STRESSCORO_DRIVER_HPP_INCLUDED
