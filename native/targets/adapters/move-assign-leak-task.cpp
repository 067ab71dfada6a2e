// stresscoro: name=move-assign-leak-task
// stresscoro: kind=task
// stresscoro: bug_class=move-assign-leaks-old
// stresscoro: expected=leak
// stresscoro: sanitizers=asan,none
// stresscoro: twin=compose-task
// stresscoro: summary=move assignment takes the source's frame and forgets its own
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::compose_adapter<stresscoro::targets::compose_flaw::move_assign_leaks> {};
