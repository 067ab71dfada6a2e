// Coroutine bodies shared by the built-in composition libraries (compose_task,
// eager_task, shared_awaitable): the same three shapes of coroutine, written once for
// any task type that has a public `pause_awaiter`. Each library's flaw lives in its
// promise, awaiters and handle, never here.
#ifndef STRESSCORO_TARGETS_DETAIL_BODIES_HPP_INCLUDED
#define STRESSCORO_TARGETS_DETAIL_BODIES_HPP_INCLUDED

namespace stresscoro::targets::detail {

/// A coroutine that finishes with `value` as soon as it first runs.
template <class Task>
Task finish_with(int value) {
    co_return value;
}

/// A coroutine that pauses `pauses` times (Task::pause_awaiter) before it finishes
/// with `pauses`.
template <class Task>
Task count_down(int pauses) {
    for (int i = 0; i < pauses; ++i) co_await typename Task::pause_awaiter{};
    co_return pauses;
}

/// A coroutine that awaits `child`, which it owns (by value in its frame) until it
/// ends, and finishes with the child's result plus `add`.
template <class Task>
Task await_plus(Task child, int add) {
    co_return co_await child + add;
}

}  // namespace stresscoro::targets::detail

#endif  // STRESSCORO_TARGETS_DETAIL_BODIES_HPP_INCLUDED
