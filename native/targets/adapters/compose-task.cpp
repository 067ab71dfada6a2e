// stresscoro: name=compose-task
// stresscoro: kind=task
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=lazy task with await_it and when_all; awaiting is cancellation-safe
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::compose_adapter<stresscoro::targets::compose_flaw::none> {};
