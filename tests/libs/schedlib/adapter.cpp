// stresscoro: name=schedlib-task
// stresscoro: kind=task
// stresscoro: summary=schedlib::task: spawned frames live in the scheduler until it is drained
// Build with -DSCHEDLIB_NO_DRAIN=1 for the library without drain() (and no run_pending).
#include <stresscoro/adapter.hpp>

#include "schedlib.hpp"

namespace {

schedlib::task countdown(int n) {
    for (int i = 0; i < n; ++i) co_await schedlib::task::pause{};
    co_return n;
}

}  // namespace

struct stresscoro_target {
    using object = schedlib::task;
    static constexpr stresscoro::factory factories[] = {{"countdown", 0, 3}};
    static object make(int, int n) { return countdown(n); }
    static void resume(object& t) { t.resume(); }
    static constexpr stresscoro::custom_op ops[] = {{"spawn", {stresscoro::pass::consume}, 0, 0}};
    static void apply(int, int, stresscoro::inputs<object> in) { schedlib::spawn(std::move(in[0])); }
    static void step() { schedlib::scheduler::instance().run_one(); }
#if !SCHEDLIB_NO_DRAIN
    static void run_pending() { schedlib::scheduler::instance().drain(); }
#endif
    static constexpr stresscoro::rules ownership = {.moves_across_threads = false};
};
