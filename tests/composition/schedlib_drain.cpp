// Fixture library schedlib (tests/libs/schedlib): frames live in the scheduler until it
// is drained. The schedule
//   make(0, countdown, 2) · call(spawn, 0) · step()
// then run_pending (if the adapter has it), nothing left to drop.
// Seeded build: -DSCHEDLIB_NO_DRAIN=1 (LeakSanitizer reports the spawned frame);
// -DTWIN: the library as it is, drained at the end.
// The scheduler is a static object, so LeakSanitizer sees an undrained frame as still
// reachable; the program counts what the schedule allocated, as stresscoro does.
#ifndef TWIN
#define SCHEDLIB_NO_DRAIN 1
#endif
#include "../libs/schedlib/adapter.cpp"

#include <cstdio>
#include <cstdlib>
#include <new>

static long g_live_blocks = 0;

void* operator new(std::size_t n) {
    if (void* p = std::malloc(n ? n : 1)) {
        ++g_live_blocks;
        return p;
    }
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    if (p != nullptr) --g_live_blocks;
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

#ifdef TWIN
#define DRAINED_WANT 1
#else
#define DRAINED_WANT 0
#endif

template <class A>
int end_of_schedule() {
    if constexpr (requires { A::run_pending(); }) {
        A::run_pending();
        return 1;
    }
    return 0;
}

__attribute__((noinline)) static void schedule() {
    using A = stresscoro_target;
    A::object t = A::make(0, 2);                                 // 0: make(countdown, 2)
    A::apply(0, 0, stresscoro::inputs<A::object>(&t, nullptr, 1)); // 1: call(spawn, 0)
    A::step();                                                   // 2: step()
}

int main() {
    const long before = g_live_blocks;
    schedule();
    const int drained = end_of_schedule<stresscoro_target>();
    const long left = g_live_blocks - before;
    std::printf("drained: %d (want %d)\n", drained, DRAINED_WANT);
    if (left != 0) {
        std::fprintf(stderr, "ERROR: leak: %ld block(s) allocated by the schedule never freed\n", left);
        return 4;
    }
    return drained == DRAINED_WANT ? 0 : 3;
}
