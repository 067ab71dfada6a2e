// lost-wakeup, as straight-line code on two threads: the schedule
//   make(0) · copy(0, 1) · send(1 -> thread 1) · spawn_waiter(0) on thread 0,
//   preempted after await_ready's load (not finished) -> thread 1: resume(1)
// The task finishes in the gap and takes an empty waiter list; the waiter then joins
// the list and is never resumed: its frame and its copy of the task leak.
// Build with -DTWIN for the correct library (one state word, CAS): the waiter sees the
// done mark in await_suspend and goes on.
#include "gate.hpp"

#include "async_task.hpp"

#include <memory>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr sync_flaw flaw = sync_flaw::none;
#else
constexpr sync_flaw flaw = sync_flaw::lost_wakeup;
#endif
using task = async_task<flaw>;

int g_seen = -1;

detached record(task t) { g_seen = co_await t; }

int main() {
    auto s0 = std::make_unique<task>(async_value<flaw>(7));  // 0: make
    auto s1 = std::make_unique<task>(*s0);                    // 1: copy(0, 1)
    // 2: send(1 -> thread 1): the thread start below is the hand-off.
    demo::interleave("await_suspend", [&] { spawn_waiter<flaw>(*s0); },  // 3: on thread A
                     [&] { s1->resume(); });                             // 4: resume(1) on B
    task::drain_pending();  // end of schedule: run_pending
    record(*s0);            // a waiter after the fact sees the value
    s1.reset();
    s0.reset();
    std::printf("result %d (want 7)\n", g_seen);
    return g_seen == 7 ? 0 : 3;
}
