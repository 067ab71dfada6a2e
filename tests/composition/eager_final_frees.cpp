// eager-final-frees, as straight-line code: the schedule
//   make(0, value, 7) · make_from(1, await_it, 0)
// Build with -DTWIN for the correct library.
#include "eager_task.hpp"
#include "detail/bodies.hpp"

#include <cstdio>
#include <optional>
#include <utility>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr eager_flaw flaw = eager_flaw::none;
#else
constexpr eager_flaw flaw = eager_flaw::frees_at_final;
#endif
using task = eager_task<flaw>;

int main() {
    std::optional<task> s0, s1;
    s0.emplace(detail::finish_with<task>(7));                      // 0: make: runs to its end at once
    s1.emplace(detail::await_plus<task>(std::move(*s0), 1));   // 1: make_from(await_it, move)
    const int got = s1->result();
    std::printf("awaiting task result: %d (want 8)\n", got);
    return got == 8 ? 0 : 3;
}
