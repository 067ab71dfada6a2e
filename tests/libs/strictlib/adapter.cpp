// stresscoro: name=strictlib-task
// stresscoro: kind=task
// stresscoro: summary=strictlib::task: correct; forbids use of a moved-from task and swap(a, a)
// -DSTRICTLIB_DECLARE_TOLERANT=1 declares (wrongly) that the library tolerates both, so
// that schedules breaking them are generated.
#include <stresscoro/adapter.hpp>

#include "strictlib.hpp"

namespace {

strictlib::task value(int n) { co_return n; }

strictlib::task countdown(int n) {
    for (int i = 0; i < n; ++i) co_await strictlib::task::pause{};
    co_return n;
}

// The awaiting coroutine: owns the child it was given.
strictlib::task parent(strictlib::task child, int add) { co_return co_await child + add; }

}  // namespace

struct stresscoro_target {
    using object = strictlib::task;
    static constexpr stresscoro::factory factories[] = {{"value", 0, 100}, {"countdown", 0, 3}};
    static object make(int f, int n) { return f == 0 ? value(n) : countdown(n); }
    static constexpr stresscoro::combinator combinators[] = {
        {"await_it", {stresscoro::pass::move}, 0, 0},
    };
    static object combine(int, int arg, stresscoro::inputs<object> in) {
        return parent(std::move(in[0]), arg);
    }
    static void resume(object& t) { t.resume(); }
    static constexpr bool awaitable = true;
#if STRICTLIB_DECLARE_TOLERANT
    static constexpr stresscoro::rules ownership = {
        .moves_across_threads = false, .use_after_move = true, .self_swap = true};
#else
    // The library's documented preconditions: a moved-from task is only destroyed or
    // assigned to, and never swapped with itself.
    static constexpr stresscoro::rules ownership = {
        .moves_across_threads = false, .use_after_move = false, .self_swap = false};
#endif
};
