// stresscoro: name=minirace-job
// stresscoro: kind=task
// stresscoro: summary=minirace::job<int> and when_any: shared lazy jobs raced against each other
#include <stresscoro/adapter.hpp>
#include <minirace/race.hpp>

minirace::job<int> countdown(int n) {
    for (int i = 0; i < n; ++i) co_await minirace::pause{};
    co_return n;
}

struct stresscoro_target {
    using object = minirace::job<int>;
    static constexpr stresscoro::factory factories[] = {{"countdown", 0, 3}};
    static object make(int, int n) { return countdown(n); }
    // any = when_any(a, b): the race keeps its own copies of both jobs.
    static constexpr stresscoro::combinator combinators[] = {
        {"when_any", {stresscoro::pass::copy, stresscoro::pass::copy}, 0, 0},
    };
    static object combine(int, int, stresscoro::inputs<object> in) {
        return minirace::when_any(in[0], in[1]);
    }
    static void resume(object& j) { j.resume(); }
    static constexpr stresscoro::rules ownership = {.moves_across_threads = false};
};
