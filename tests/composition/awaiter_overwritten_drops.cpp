// awaiter-overwritten in its shortest form: the schedule
//   make(0, countdown, 1) · make_from(1, await_it, 0) · make_from(2, await_it, 0)
// then the end-of-schedule drops, newest first. The producer, destroyed unfinished,
// walks its waiting records, one of which lives in a freed frame.
// Build with -DTWIN for the correct library.
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
    s0.emplace(detail::count_down<shared>(1));       // 0: make: the producer pauses once
    s1.emplace(detail::await_plus<shared>(*s0, 10));  // 1: make_from(await_it, copy): waits
    s2.emplace(detail::await_plus<shared>(*s0, 20));  // 2: make_from(await_it, copy): waits too
    const bool waiting = !s1->done() && !s2->done();
    std::printf("both awaiters waiting: %d (want 1)\n", waiting ? 1 : 0);
    s2.reset();  // end of schedule: drops, newest first
    s1.reset();
    s0.reset();
    return waiting ? 0 : 3;
}
