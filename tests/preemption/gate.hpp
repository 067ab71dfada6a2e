// Forces one interleaving of two threads by hand, as a preemption would: thread A stops
// at a named STRESSCORO_TARGETS_HOOK point of the library until thread B has run its
// part, then goes on. A build whose code path has no such point (the correct twin of
// a check-then-act release) runs A to the end first, then B.
//
// Include this before the library, so that the library's hook points call demo::hook.
#ifndef STRESSCORO_PREEMPTION_GATE_HPP_INCLUDED
#define STRESSCORO_PREEMPTION_GATE_HPP_INCLUDED

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

namespace demo {

inline const char* g_point = "";
// 0: A runs; 1: A waits at g_point; 2: B has run, A goes on.
inline std::atomic<int> g_phase{0};
inline thread_local bool t_is_a = false;

inline void hook(const char* point) {
    if (!t_is_a || std::strcmp(point, g_point) != 0 || g_phase.load() != 0) return;
    g_phase.store(1);
    while (g_phase.load() != 2) std::this_thread::yield();
    std::printf("thread A stopped at %s until thread B ran\n", point);
}

/// Run `a` on one thread and `b` on another, with `b` in the gap at `point` of `a`.
template <class A, class B>
void interleave(const char* point, A a, B b) {
    std::setvbuf(stdout, nullptr, _IONBF, 0);  // seen even when a sanitizer ends the run
    g_point = point;
    std::atomic<bool> a_done{false};
    std::thread ta([&] {
        t_is_a = true;
        a();
        a_done.store(true);
    });
    std::thread tb([&] {
        while (g_phase.load() != 1 && !a_done.load()) std::this_thread::yield();
        b();
        if (g_phase.load() == 1) g_phase.store(2);
    });
    ta.join();
    tb.join();
    if (g_phase.load() != 2) std::printf("thread A did not pass %s: thread B ran after it\n", point);
}

}  // namespace demo

#define STRESSCORO_TARGETS_HOOK(point) ::demo::hook(#point)

#endif  // STRESSCORO_PREEMPTION_GATE_HPP_INCLUDED
