// combinator-dangling-temporaries, as straight-line code: the schedule
//   make(0, value, 1) · make(1, value, 2) · make_from(2, when_all, 0, 1) · drop(0) · resume(2)
// when_all takes both tasks by std::move; the dropped slot 0 is the moved-from source.
// Build with -DTWIN for the correct library.
#include "compose_task.hpp"
#include "detail/bodies.hpp"

#include <cstdio>
#include <optional>
#include <utility>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr compose_flaw flaw = compose_flaw::none;
#else
constexpr compose_flaw flaw = compose_flaw::keeps_references;
#endif
using task = compose_task<flaw>;

int main() {
    std::optional<task> s0, s1, s2;
    s0.emplace(detail::finish_with<task>(1));                          // 0: make
    s1.emplace(detail::finish_with<task>(2));                          // 1: make
    s2.emplace(when_all<flaw>(std::move(*s0), std::move(*s1)));  // 2: make_from(when_all, move, move)
    s0.reset();                                                  // 3: drop the moved-from source
    s2->resume();                                                // 4: a later statement runs when_all
    const int got = s2->result();
    std::printf("when_all result: %d (want 3)\n", got);
    return got == 3 ? 0 : 3;
}
