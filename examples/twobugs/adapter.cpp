// stresscoro: name=twobugs-lazy
// stresscoro: kind=task
// stresscoro: summary=twobugs::lazy<int>: two seeded bugs (a sharing copy; a frame freed at final suspend)
#include <stresscoro/adapter.hpp>
#include <twobugs/lazy.hpp>

twobugs::lazy<int> answer(int n) { co_return n + 1; }

struct stresscoro_target {
    using object = twobugs::lazy<int>;
    static constexpr stresscoro::factory factories[] = {{"answer", 0, 9}};
    static object make(int, int n) { return answer(n); }
    static void resume(object& t) { t.start(); }
    static std::coroutine_handle<> handle(const object& t) { return t.frame(); }
};
