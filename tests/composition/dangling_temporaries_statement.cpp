// combinator-dangling-temporaries as a user writes it: when_all over two temporaries,
// awaited (here: resumed) in a later statement. Build with -DTWIN for the correct library.
#include "compose_task.hpp"
#include "detail/bodies.hpp"

#include <cstdio>

using namespace stresscoro::targets;
#ifdef TWIN
constexpr compose_flaw flaw = compose_flaw::none;
#else
constexpr compose_flaw flaw = compose_flaw::keeps_references;
#endif
using task = compose_task<flaw>;

int main() {
    task all = when_all<flaw>(detail::finish_with<task>(1), detail::finish_with<task>(2));  // temporaries die here
    all.resume();
    const int got = all.result();
    std::printf("when_all result: %d (want 3)\n", got);
    return got == 3 ? 0 : 3;
}
