// Fixture library strictlib (tests/libs/strictlib): correct, with two preconditions.
// Seeded build: breaks a precondition (awaits a moved-from task) and the library's
// assertion aborts; -DTWIN keeps to the preconditions and exercises what is allowed:
// awaiting, destroying a waiting parent, destroying an awaited child, swapping two tasks.
#include "../libs/strictlib/adapter.cpp"

#include <cstdio>
#include <optional>

int main() {
    using A = stresscoro_target;
    using in = stresscoro::inputs<A::object>;
    std::optional<A::object> s0, s1, s2, s3;
    s0.emplace(A::make(1, 1));                                // countdown(1)
    s1.emplace(A::combine(0, 5, in(&*s0, nullptr, 1)));       // await_it(move 0): s0 moved-from
#ifndef TWIN
    s2.emplace(A::combine(0, 5, in(&*s0, nullptr, 1)));       // await_it(0) again: moved-from
    A::resume(*s2);
#else
    A::resume(*s1);                                           // parent waits at the child's pause
    s1.reset();                                               // drop the waiting parent
    s2.emplace(A::make(1, 2));
    s3.emplace(A::make(0, 4));
    using std::swap;
    swap(*s2, *s3);                                           // two distinct tasks: allowed
    s0.reset();
    s0.emplace(A::make(0, 7));
    A::object parent = A::combine(0, 1, in(&*s0, nullptr, 1));
    A::resume(parent);
    std::printf("parent result: %d (want 8)\n", parent.result());
    return parent.result() == 8 ? 0 : 3;
#endif
}
