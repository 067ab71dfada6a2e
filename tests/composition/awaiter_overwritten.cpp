// awaiter-overwritten, as straight-line code: the schedule
//   make(0, countdown, 1) · make_from(1, await_it, 0) · make_from(2, await_it, 0) · drop(1) · resume(0)
// Build with -DTWIN for the correct library (then every awaiter gets the result).
#include "shared_awaitable.hpp"
#include "detail/bodies.hpp"

#include <cstdio>
#include <optional>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr awaiters_flaw flaw = awaiters_flaw::none;
#else
constexpr awaiters_flaw flaw = awaiters_flaw::overwritten;
#endif
using shared = shared_awaitable<flaw>;

int main() {
    std::optional<shared> s0, s1, s2;
    s0.emplace(detail::count_down<shared>(1));          // 0: make: the producer pauses once
    s1.emplace(detail::await_plus<shared>(*s0, 10));     // 1: make_from(await_it, copy): waits
    s2.emplace(detail::await_plus<shared>(*s0, 20));     // 2: make_from(await_it, copy): waits too
    s1.reset();                                     // 3: drop the first awaiter mid-wait
    s0->resume();                                   // 4: the producer finishes, resumes its waiters
    const int got = s2->result();
    std::printf("second awaiter result: %d (want 21)\n", got);
    return got == 21 ? 0 : 3;
}
