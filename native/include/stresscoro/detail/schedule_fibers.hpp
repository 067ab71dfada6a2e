// Schedule threads as ThreadSanitizer fibers: every schedule thread but the calling one
// runs on a stack of its own, switched to in the calling OS thread, and ThreadSanitizer
// keeps a thread state for each (its own clock, shadow stack and ignores), so it sees
// them as the threads they stand for.
//
// Why: schedule threads take strict turns. Two OS threads taking turns spend their time
// handing the CPU over (a wake-up, or a thread spinning on the other core), and the
// native explorer runs one schedule in a few microseconds; as fibers, a turn that passes
// to another thread is a stack switch. The explorer uses fibers under ThreadSanitizer
// only; every schedule a batch stops on is run again by a worker on real threads, which
// is what a report comes from.
//
// Happens-before: switches never synchronise (__tsan_switch_to_fiber_no_sync), so
// the only edges between schedule threads are the target's own and `send`'s, as with OS
// threads. Around a schedule the driver gives the same start and finish edges the
// persistent OS threads give (release before the first turn, acquire after the last).
//
// What fibers do not give: an OS thread of their own. Code that keys on the OS thread
// (thread_local state, thread ids) sees one thread; such a target's cross-thread rules are
// checked by `stresscoro fuzz --sanitizer tsan` (real threads), or by explore with
// STRESSCORO_FIBERS=0.
//
// Invariants:
// - Fibers 0 .. m_started-1 exist in this process, each parked either at the top of its
//   loop (between schedules) or inside a schedule's take_turns.
// - Only the calling thread (the `main` context) and the fibers switch, always through
//   switch_to(); m_current names who runs.
#ifndef STRESSCORO_DETAIL_SCHEDULE_FIBERS_HPP_INCLUDED
#define STRESSCORO_DETAIL_SCHEDULE_FIBERS_HPP_INCLUDED

#include <stresscoro/detail/config.hpp>
#include <stresscoro/detail/event_log.hpp>
#include <stresscoro/detail/schedule_threads.hpp>

#if defined(STRESSCORO_TSAN) && defined(__linux__)
#define STRESSCORO_HAS_FIBERS 1

#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
// The stack switch: saves the callee-saved registers on the current stack, stores its
// stack pointer in *save, loads `load` and pops the registers saved there. A new
// fiber's stack is laid out as if it had switched away just before
// stresscoro_fiber_entry, which calls r13(r12). No signal mask is saved or set (what
// makes swapcontext a system call). Weak, so that two translation units that both
// include this header link.
extern "C" void stresscoro_fiber_switch(void** save, void* load);
extern "C" void stresscoro_fiber_entry();
__asm__(
    ".pushsection .text\n"
    ".weak stresscoro_fiber_switch\n"
    ".type stresscoro_fiber_switch,@function\n"
    "stresscoro_fiber_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size stresscoro_fiber_switch, .-stresscoro_fiber_switch\n"
    ".weak stresscoro_fiber_entry\n"
    ".type stresscoro_fiber_entry,@function\n"
    "stresscoro_fiber_entry:\n"
    "    movq %r12, %rdi\n"
    "    callq *%r13\n"
    "    ud2\n"
    ".size stresscoro_fiber_entry, .-stresscoro_fiber_entry\n"
    ".popsection\n");
#define STRESSCORO_FIBER_SWITCH 1
#endif

extern "C" void* __tsan_get_current_fiber(void);
extern "C" void* __tsan_create_fiber(unsigned flags);
extern "C" void __tsan_switch_to_fiber(void* fiber, unsigned flags);
extern "C" void __tsan_set_fiber_name(void* fiber, const char* name);

namespace stresscoro::detail {

class schedule_fibers {
public:
    static constexpr int capacity = 8;
    static constexpr int main_context = -1;
    using body_fn = void (*)(int index);

    explicit constexpr schedule_fibers(body_fn body) noexcept : m_body(body) {}
    schedule_fibers(const schedule_fibers&) = delete;
    schedule_fibers& operator=(const schedule_fibers&) = delete;

    /// Whether schedules may run as fibers in this process: STRESSCORO_FIBERS=0 says no.
    static bool wanted() noexcept {
        const char* v = std::getenv("STRESSCORO_FIBERS");
        return v == nullptr || std::strcmp(v, "0") != 0;
    }

    /// Fibers 0 .. n-1 exist (made now if missing), each on a stack of `stack_bytes`
    /// plus a guard page. False if one could not be made.
    STRESSCORO_NO_TSAN bool start(int n, std::size_t stack_bytes) noexcept {
        const pid_t pid = getpid();
        if (m_pid != pid) {  // the first call, or fibers made before a fork (the parent's)
            m_pid = pid;
            m_started = 0;
            m_current = main_context;
            m_main = __tsan_get_current_fiber();
            m_tid = static_cast<long long>(syscall(SYS_gettid));
        }
        const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        const std::size_t bytes = (stack_bytes + page - 1) / page * page + page;
        for (; m_started < n && m_started < capacity; ++m_started) {
            fiber& f = m_fibers[m_started];
            void* stack = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
            if (stack == MAP_FAILED) return false;
            mprotect(stack, page, PROT_NONE);  // the guard: an overflow faults, as on a thread
            f.m_pool = this;
            f.m_index = m_started;
#if defined(STRESSCORO_FIBER_SWITCH)
            // From the top: the return address (16-byte aligned after the ret, as a call
            // needs), then the six registers stresscoro_fiber_switch pops.
            auto* top = reinterpret_cast<void**>(static_cast<char*>(stack) + bytes);
            void** sp = top - 7;
            for (int r = 0; r < 7; ++r) sp[r] = nullptr;
            sp[2] = reinterpret_cast<void*>(&fiber_main);  // r13
            sp[3] = &f;                                     // r12
            sp[6] = reinterpret_cast<void*>(&stresscoro_fiber_entry);
            f.m_sp = sp;
#else
            if (getcontext(&f.m_context) != 0) return false;
            f.m_context.uc_stack.ss_sp = stack;
            f.m_context.uc_stack.ss_size = bytes;
            f.m_context.uc_link = nullptr;
            // makecontext passes ints: the fiber's address in two halves.
            const auto address = reinterpret_cast<std::uintptr_t>(&f);
            makecontext(&f.m_context, reinterpret_cast<void (*)()>(&fiber_context_main), 2,
                        static_cast<unsigned>(address >> 32), static_cast<unsigned>(address));
#endif
            f.m_tsan = __tsan_create_fiber(0);
            __tsan_set_fiber_name(f.m_tsan, "stresscoro schedule thread");
        }
        return n <= m_started;
    }

    /// The OS thread id fiber i runs on (the calling thread's): what reports print.
    long long tid(int) const noexcept { return m_tid; }

    /// Start a schedule on fibers 0 .. n-1 (all started): the edge a thread start gives
    /// (schedule_threads::launch) is released here and acquired by each fiber when it is
    /// first switched to.
    void launch(int n) noexcept {
        m_active = n;
        for (int i = 0; i < n; ++i) quiet_set(m_done[i], 0);
        m_start.fetch_add(1, std::memory_order_release);
    }

    /// Called by the calling thread once every turn is taken: switches to each fiber
    /// that has not left the schedule yet (it sees the last turn taken and leaves), then
    /// acquires the edge a join gives.
    void finish() noexcept {
        for (int i = 0; i < m_active; ++i) {
            while (!quiet_get(m_done[i])) switch_to(i);
        }
        (void)m_finish.load(std::memory_order_acquire);
    }

    /// Hand the CPU to fiber `to` (or to the calling thread, main_context); returns when
    /// someone hands it back to the caller.
    STRESSCORO_NO_TSAN void switch_to(int to) noexcept {
        const int from = m_current;
        if (to == from) return;
        void* tsan = to == main_context ? m_main : m_fibers[to].m_tsan;
        m_current = to;
        __tsan_switch_to_fiber(tsan, no_sync);
#if defined(STRESSCORO_FIBER_SWITCH)
        void** save = from == main_context ? &m_main_sp : &m_fibers[from].m_sp;
        stresscoro_fiber_switch(save, to == main_context ? m_main_sp : m_fibers[to].m_sp);
#else
        ucontext_t* save = from == main_context ? &m_main_context : &m_fibers[from].m_context;
        swapcontext(save, to == main_context ? &m_main_context : &m_fibers[to].m_context);
#endif
    }

    int current() const noexcept { return m_current; }

private:
    static constexpr unsigned no_sync = 1u << 0;  // __tsan_switch_to_fiber_no_sync

    struct fiber {
        schedule_fibers* m_pool = nullptr;
        int m_index = 0;
#if defined(STRESSCORO_FIBER_SWITCH)
        void* m_sp = nullptr;
#else
        ucontext_t m_context{};
#endif
        void* m_tsan = nullptr;
    };

    STRESSCORO_NO_TSAN static void fiber_main(void* arg) {
        fiber& f = *static_cast<fiber*>(arg);
        // Each pass is one schedule, from launch() to its end; then back to the caller.
        for (;;) f.m_pool->one_schedule(f.m_index);
    }

    // Instrumented, unlike fiber_main: TSan must see the start and finish edges.
    void one_schedule(int index) {
        (void)m_start.load(std::memory_order_acquire);
        m_body(index);
        m_finish.fetch_add(1, std::memory_order_release);
        quiet_set(m_done[index], 1);
        switch_to(main_context);
    }
#if !defined(STRESSCORO_FIBER_SWITCH)
    STRESSCORO_NO_TSAN static void fiber_context_main(unsigned high, unsigned low) {
        fiber_main(reinterpret_cast<void*>((static_cast<std::uintptr_t>(high) << 32) | low));
    }
#endif

    fiber m_fibers[capacity];
    int m_started = 0;
    int m_active = 0;             // fibers of the schedule in flight
    int m_done[capacity] = {};    // quiet: fiber i has finished it
    long long m_tid = 0;
    // Seen by ThreadSanitizer: the start and finish edges of each schedule.
    std::atomic<unsigned> m_start{0};
    std::atomic<unsigned> m_finish{0};
    int m_current = main_context;
    pid_t m_pid = 0;
    void* m_main = nullptr;
#if defined(STRESSCORO_FIBER_SWITCH)
    void* m_main_sp = nullptr;
#else
    ucontext_t m_main_context{};
#endif
    body_fn m_body;
};

}  // namespace stresscoro::detail

#endif  // STRESSCORO_TSAN && __linux__

#endif  // STRESSCORO_DETAIL_SCHEDULE_FIBERS_HPP_INCLUDED
