// Fixture library looplib (tests/libs/looplib), one schedule with the adapter's
// begin()/end() around it:
//   begin · make(0, ticks, 2) · make(1, ticks, 1) · move_assign(0, 1) · make(2, ticks, 2)
//   · call(spawn, 2) · step() · [drops] · end
// Seeded build: -DLOOPLIB_SEEDED=1 (the frame slot 1 held before the move assignment
// leaks); -DTWIN: the correct library, clean.
#ifndef TWIN
#define LOOPLIB_SEEDED 1
#endif
#include "../libs/looplib/adapter.cpp"

#include <cstdio>

__attribute__((noinline)) static int schedule() {
    using A = stresscoro_target;
    A::begin();
    int pending = 0;
    {
        A::object s0 = A::make(0, 2);                                    // 0: make
        A::object s1 = A::make(0, 1);                                    // 1: make
        s1 = std::move(s0);                                              // 2: move_assign(0, 1)
        A::object s2 = A::make(0, 2);                                    // 3: make
        A::apply(0, 0, stresscoro::inputs<A::object>(&s2, nullptr, 1));  // 4: call(spawn, 2)
        A::step();                                                       // 5: step()
        pending = static_cast<int>(g_loop->pending());
    }  // end of schedule: drops
    A::end();  // the loop frees the spawned frame it still holds
    return pending;
}

int main() {
    const int pending = schedule();
    std::printf("frames still on the loop after one step: %d (want 1)\n", pending);
    return pending == 1 ? 0 : 3;
}
