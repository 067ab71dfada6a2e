// Adapters for the built-in threaded family (issue 17), in the public adapter form
// (stresscoro/adapter.hpp): a reference-counted task that copies may drop, resume and
// await from any thread, and a when_all over two of them. Each target file picks one
// flaw and names the result `stresscoro_target`, exactly as a user's adapter would.
// No factory, combinator or op holds a trigger: each flaw needs another schedule thread
// to run between two atomic operations of one op (a preemption), nothing more.
#ifndef STRESSCORO_TARGETS_THREADED_HPP_INCLUDED
#define STRESSCORO_TARGETS_THREADED_HPP_INCLUDED

#include <stresscoro/adapter.hpp>

#include "../async_task.hpp"

#include <coroutine>

namespace stresscoro::targets {

// No probe (awaitable = false): a probe lives in a slot and may be dropped while it
// waits, and this library, like cppcoro's shared_task, resumes waiters from whichever
// thread finishes the task, so a waiting coroutine destroyed meanwhile races with its
// own resume; no library can make that safe without blocking. The waiting coroutines
// here are the library's own: detached waiters (spawn_waiter) and when_all's children,
// which own what they wait for and which nothing else destroys early.
//
// No use_count(): a waiter, a when_all child, a running body and the pending list each
// hold references that no slot shows.
template <sync_flaw Flaw>
struct async_task_adapter {
    using object = async_task<Flaw>;
    static constexpr factory factories[] = {{"value", 0, 100}};
    static object make(int, int arg) { return async_value<Flaw>(arg); }
    // sum = when_all(a, b) + arg: a new task that waits for copies of both.
    static constexpr combinator combinators[] = {{"when_all", {pass::copy, pass::copy}, 0, 9}};
    static object combine(int, int arg, inputs<object> in) { return when_all_sum<Flaw>(in[0], in[1], arg); }
    // spawn_waiter(t): a detached coroutine that copies t and waits for it.
    static constexpr custom_op ops[] = {{"spawn_waiter", {pass::ref}, 0, 0}};
    static void apply(int, int, inputs<object> in) { spawn_waiter<Flaw>(in[0]); }
    // End of schedule: start whatever a coroutine still waits for.
    static void run_pending() { object::drain_pending(); }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
    static constexpr bool awaitable = false;
    static constexpr rules ownership = {
        .copies_dropped_across_threads = true,  // the count orders the last destroy
        .resume_from_any_thread = true,         // the start is elected by an atomic exchange
        .await_twice = true,                    // any number of waiters
    };
};

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_THREADED_HPP_INCLUDED
