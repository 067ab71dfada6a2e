// stresscoro: name=tiny-clean
// stresscoro: kind=task
// stresscoro: sanitizers=asan
#include <stresscoro/adapter.hpp>
#include <tiny/task.hpp>

struct stresscoro_target {
    using object = tiny::task<false>;
    static constexpr stresscoro::factory factories[] = {{"answer", 0, 9}};
    static object make(int, int n) { return tiny::answer<false>(n); }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.handle(); }
};
