// when-all-counter, as straight-line code on two threads: the schedule
//   make(0) · make(1) · copy(1, 2) · send(2 -> thread 1) · make_from(3 = when_all(0, 1))
//   · resume(3) · resume(0) on thread 0, preempted after the when_all counter's
//   decrement -> thread 1: resume(2)
// The first child counts itself done; the second, last, resumes the parent, which reads
// the results and destroys both children; the first then stores its result from its
// freed frame: AddressSanitizer reports heap-use-after-free.
// Build with -DTWIN for the correct library (store, then count): the sum is right.
#include "gate.hpp"

#include "async_task.hpp"

#include <memory>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr sync_flaw flaw = sync_flaw::none;
#else
constexpr sync_flaw flaw = sync_flaw::count_before_store;
#endif
using task = async_task<flaw>;

int g_sum = -1;

detached record(task t) { g_sum = co_await t; }

int main() {
    auto s0 = std::make_unique<task>(async_value<flaw>(1));             // 0: make
    auto s1 = std::make_unique<task>(async_value<flaw>(2));             // 1: make
    auto s2 = std::make_unique<task>(*s1);                              // 2: copy(1, 2)
    // 3: send(2 -> thread 1): the thread start below is the hand-off.
    auto s3 = std::make_unique<task>(when_all_sum<flaw>(*s0, *s1, 0));  // 4: make_from(when_all)
    s3->resume();                                                       // 5: both children wait
    demo::interleave("when_all_counted", [&] { s0->resume(); },         // 6: on thread A
                     [&] { s2->resume(); });                            // 7: resume(2) on B
    task::drain_pending();
    record(*s3);
    s3.reset();
    s2.reset();
    s1.reset();
    s0.reset();
    std::printf("when_all sum %d (want 3)\n", g_sum);
    return g_sum == 3 ? 0 : 3;
}
