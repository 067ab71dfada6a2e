// stresscoro: name=minicoro-shared-job
// stresscoro: kind=shared_task
// stresscoro: summary=minicoro::shared_job<int>: reference-counted, copies share one frame
#include <stresscoro/adapter.hpp>
#include <minicoro/shared_job.hpp>

minicoro::shared_job<int> square(int n) { co_return n * n; }
minicoro::shared_job<int> countdown(int n) {
    int total = 0;
    for (int i = n; i > 0; --i) {
        total += i;
        co_await std::suspend_always{};
    }
    co_return total;
}

struct stresscoro_target {
    using object = minicoro::shared_job<int>;
    static constexpr stresscoro::factory factories[] = {{"square", 0, 100}, {"countdown", 0, 4}};
    static object make(int f, int n) { return f == 0 ? square(n) : countdown(n); }
    static void resume(object& j) { j.resume(); }
    static void touch(object& j) { j.set_result(-1); }
    static std::coroutine_handle<> handle(const object& j) { return j.handle(); }
    static long use_count(const object& j) { return j.use_count(); }
    // The library promises that copies may be released on any thread.
    static constexpr stresscoro::rules ownership = {.copies_dropped_across_threads = true};
};
