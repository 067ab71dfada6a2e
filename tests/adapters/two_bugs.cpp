// stresscoro: name=two-bugs
// stresscoro: kind=task
// stresscoro: sanitizers=asan
// stresscoro: summary=test-only: two independent seeded bugs, a copy that shares the frame and a parameter view that dangles
#include <stresscoro/adapter.hpp>

// Bug 1: tiny::task<true>'s copy shares the frame, and both copies destroy it.
#include "../data/ci_project/include/tiny/task.hpp"

#include <string>
#include <string_view>

using task = tiny::task<true>;

// Bug 2: the frame keeps a view of the caller's string, read at the first resume.
task count_a(std::string_view text) {
    int n = 0;
    for (char c : text) n += c == 'a';
    co_return n;
}

struct stresscoro_target {
    using object = task;
    static constexpr stresscoro::factory factories[] = {{"value", 0, 9}, {"count_a", 0, 16}};
    static object make(int f, int arg) {
        if (f == 0) return tiny::answer<true>(arg);
        std::string text(static_cast<std::size_t>(arg) + 24, 'a');
        return count_a(text);
    }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.handle(); }
};
