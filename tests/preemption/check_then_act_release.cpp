// check-then-act-release, as straight-line code on two threads: the schedule
//   make(0) · copy(0, 1) · send(1 -> thread 1) · drop(0) on thread 0,
//   preempted after its first sync point (release's load) -> thread 1 drops 1
// Both owners read 2 and decrement; nobody destroys the frame: LeakSanitizer reports it.
// Build with -DTWIN for the correct library (fetch_sub decides): the frame is freed.
#include "gate.hpp"

#include "async_task.hpp"

#include <memory>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr sync_flaw flaw = sync_flaw::none;
#else
constexpr sync_flaw flaw = sync_flaw::check_then_act_release;
#endif
using task = async_task<flaw>;

int main() {
    auto s0 = std::make_unique<task>(async_value<flaw>(7));  // 0: make
    auto s1 = std::make_unique<task>(*s0);                    // 1: copy(0, 1)
    // 2: send(1 -> thread 1): the thread start below is the hand-off.
    demo::interleave("release_checked", [&] { s0.reset(); },  // 3: drop(0) on thread A
                     [&] { s1.reset(); });                    // thread B's end-of-schedule drop
    std::printf("both owners dropped (want the frame freed)\n");
    return 0;
}
