// examples/minirace: a race abandoned while both jobs still run. The schedule
//   make(0, countdown, 1) · make(1, countdown, 1) · make_from(2 = when_any(0, 1)) · drop(2) · resume(0)
// Build with -DTWIN (= -DMINIRACE_FIXED=1) for the fixed library.
#ifdef TWIN
#define MINIRACE_FIXED 1
#endif
#include "../../examples/minirace/adapter.cpp"

#include <cstdio>
#include <optional>

int main() {
    using A = stresscoro_target;
    std::optional<A::object> s0, s1, s2;
    s0.emplace(A::make(0, 1));                                                 // 0: make
    s1.emplace(A::make(0, 1));                                                 // 1: make
    s2.emplace(A::combine(0, 0, stresscoro::inputs<A::object>(&*s0, &*s1, 2)));  // 2: when_any(0, 1)
    s2.reset();      // 3: drop the race while both jobs wait at their pause
    A::resume(*s0);  // 4: job 0 finishes and tells its listener
    const int got = s0->done() ? *s0->result() : -1;
    std::printf("job 0 result: %d (want 1)\n", got);
    return got == 1 ? 0 : 3;
}
