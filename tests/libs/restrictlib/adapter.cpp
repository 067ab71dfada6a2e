// stresscoro: name=restrictlib-task
// stresscoro: kind=task
// stresscoro: summary=restrictlib::task: co_await only from restrictlib's own coroutines
// `awaitable` is not declared: the probe cannot co_await this type, and stresscoro
// leaves that op out with a note. The awaiting is done by await_it, a restrictlib task.
#include <stresscoro/adapter.hpp>

#include "restrictlib.hpp"

namespace {

restrictlib::task countdown(int n) {
    for (int i = 0; i < n; ++i) co_await restrictlib::task::pause{};
    co_return n;
}

restrictlib::task parent(restrictlib::task child, int add) { co_return co_await child + add; }

}  // namespace

struct stresscoro_target {
    using object = restrictlib::task;
    static constexpr stresscoro::factory factories[] = {{"countdown", 0, 3}};
    static object make(int, int n) { return countdown(n); }
    static constexpr stresscoro::combinator combinators[] = {
        {"await_it", {stresscoro::pass::move}, 0, 0},
    };
    static object combine(int, int arg, stresscoro::inputs<object> in) {
        return parent(std::move(in[0]), arg);
    }
    static void resume(object& t) { t.resume(); }
    static constexpr stresscoro::rules ownership = {.moves_across_threads = false};
};
