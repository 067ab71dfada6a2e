// stresscoro: name=looplib-task
// stresscoro: kind=task
// stresscoro: summary=looplib::task on a per-schedule event loop; spawn hands a task to the loop
// Build with -DLOOPLIB_SEEDED=1 for the seeded move-assignment bug.
#include <stresscoro/adapter.hpp>

#include "looplib.hpp"

namespace {

looplib::loop* g_loop = nullptr;  // one per schedule: made in begin(), destroyed in end()

looplib::task ticks(int n) {
    for (int i = 0; i < n; ++i) co_await looplib::task::yield{};
    co_return n;
}

}  // namespace

struct stresscoro_target {
    using object = looplib::task;
    static constexpr stresscoro::factory factories[] = {{"ticks", 0, 3}};
    static object make(int, int n) { return ticks(n); }
    static void resume(object& t) { t.resume(); }
    static constexpr stresscoro::custom_op ops[] = {{"spawn", {stresscoro::pass::consume}, 0, 0}};
    static void apply(int, int, stresscoro::inputs<object> in) { g_loop->spawn(std::move(in[0])); }
    static void begin() { g_loop = new looplib::loop; }
    static void step() { g_loop->run_one(); }
    static void end() {
        delete g_loop;
        g_loop = nullptr;
    }
    static constexpr stresscoro::rules ownership = {.moves_across_threads = false};
};
