// Fixture library restrictlib (tests/libs/restrictlib): co_await only from its own
// coroutines. The program checks, at compile time, that stresscoro's test for "can a
// probe (a plain std::coroutine_handle<>) co_await it" says no while the library's own
// handle says yes, then runs make(0, countdown, 1) · make_from(1 = await_it(0)) ·
// resume(1) and drops the waiting parent, all clean.
// Seeded build: tries `co_await` from a coroutine of another type, which must not
// compile (the test expects the compiler to refuse it); -DTWIN: the clean run.
#include "../libs/restrictlib/adapter.cpp"

#include <cstdio>
#include <optional>

using A = stresscoro_target;
static_assert(!stresscoro::awaitable_from<A::object, std::coroutine_handle<>>);
static_assert(stresscoro::awaitable_from<A::object, restrictlib::task::handle_type>);

#ifndef TWIN
struct foreign {
    struct promise_type {
        foreign get_return_object() { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() {}
    };
};
foreign probe_like(A::object& t) { co_await t; }  // must not compile
#endif

int main() {
    std::optional<A::object> s0, s1;
    s0.emplace(A::make(0, 1));                                                  // 0: make
    s1.emplace(A::combine(0, 2, stresscoro::inputs<A::object>(&*s0, nullptr, 1)));  // 1: await_it
    A::resume(*s1);  // 2: the parent waits at the child's pause
    const bool waiting = !s1->done();
    s1.reset();      // drop the waiting parent (and the child it owns)
    std::printf("parent was waiting: %d (want 1)\n", waiting ? 1 : 0);
    return waiting ? 0 : 3;
}
