// stresscoro: name=awaitlib-task
// stresscoro: kind=task
// stresscoro: summary=awaitlib::task: shared, lazy; a task awaiting another is a combinator
// Build with -DAWAITLIB_FIXED=1 for the fixed library.
#include <stresscoro/adapter.hpp>

#include "awaitlib.hpp"

namespace {

awaitlib::task countdown(int n) {
    for (int i = 0; i < n; ++i) co_await awaitlib::task::pause{};
    co_return n;
}

// The awaiting coroutine, one of the library's own: it keeps its copy of the child.
awaitlib::task parent(awaitlib::task child, int add) { co_return co_await child + add; }

}  // namespace

struct stresscoro_target {
    using object = awaitlib::task;
    // countdown(0) is a task that simply returns: one factory covers both shapes.
    static constexpr stresscoro::factory factories[] = {{"countdown", 0, 3}};
    static object make(int, int n) { return countdown(n); }
    static constexpr stresscoro::combinator combinators[] = {
        {"await_it", {stresscoro::pass::copy}, 0, 0},
    };
    static object combine(int, int arg, stresscoro::inputs<object> in) { return parent(in[0], arg); }
    static void resume(object& t) { t.resume(); }
    static constexpr stresscoro::rules ownership = {.moves_across_threads = false};
};
