// resume-inside-await-suspend, as straight-line code: the schedule
//   make(0, value, 1) · make(1, value, 2) · make_from(2, when_all, 0, 1)
//   · make_from(3, await_it, 2) · resume(3)
// await_it consumes the when_all task and frees it as soon as it has its result.
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
constexpr compose_flaw flaw = compose_flaw::resumes_inline;
#endif
using task = compose_task<flaw>;

int main() {
    std::optional<task> s0, s1, s2, s3;
    s0.emplace(detail::finish_with<task>(1));                          // 0: make
    s1.emplace(detail::finish_with<task>(2));                          // 1: make
    s2.emplace(when_all<flaw>(std::move(*s0), std::move(*s1)));  // 2: make_from(when_all, move, move)
    s3.emplace(await_it<flaw>(std::move(*s2), 10));              // 3: make_from(await_it, move)
    s3->resume();                                                // 4: resume the awaiting task
    const int got = s3->result();
    std::printf("await_it result: %d (want 13)\n", got);
    return got == 13 ? 0 : 3;
}
