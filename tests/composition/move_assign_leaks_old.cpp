// move-assign-leaks-old, as straight-line code: the schedule
//   make(0, value, 1) · make(1, value, 2) · move_assign(0, 1)
// then the end-of-schedule drops. Build with -DTWIN for the correct library.
#include "compose_task.hpp"
#include "detail/bodies.hpp"

#include <cstdio>
#include <optional>
#include <utility>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr compose_flaw flaw = compose_flaw::none;
#else
constexpr compose_flaw flaw = compose_flaw::move_assign_leaks;
#endif
using task = compose_task<flaw>;

__attribute__((noinline)) static int run() {
    std::optional<task> s0, s1;
    s0.emplace(detail::finish_with<task>(1));  // 0: make
    s1.emplace(detail::finish_with<task>(2));  // 1: make
    *s1 = std::move(*s0);                // 2: move_assign(0, 1): s1's old frame is never freed
    s1->resume();
    return s1->result();
}

int main() {
    const int got = run();
    std::printf("assigned task result: %d (want 1)\n", got);
    return got == 1 ? 0 : 3;
}
