// Fixture library awaitlib (tests/libs/awaitlib): destroying a suspended parent leaves
// its continuation in the child. The schedule
//   make(0, countdown, 1) · make_from(1 = await_it(0)) · resume(1) · drop(1) · resume(0)
// Build with -DTWIN (= -DAWAITLIB_FIXED=1) for the fixed library.
#ifdef TWIN
#define AWAITLIB_FIXED 1
#endif
#include "../libs/awaitlib/adapter.cpp"

#include <cstdio>
#include <optional>

int main() {
    using A = stresscoro_target;
    std::optional<A::object> s0, s1;
    s0.emplace(A::make(0, 1));                                          // 0: make(countdown, 1)
    s1.emplace(A::combine(0, 0, stresscoro::inputs<A::object>(&*s0, nullptr, 1)));  // 1: await_it(0)
    A::resume(*s1);   // 2: the parent starts and waits for the child at its pause
    s1.reset();       // 3: drop the suspended parent
    A::resume(*s0);   // 4: the child finishes and resumes its continuation
    const int got = s0->result();
    std::printf("child result: %d (want 1)\n", got);
    return got == 1 ? 0 : 3;
}
