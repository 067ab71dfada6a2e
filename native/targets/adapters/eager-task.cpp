// stresscoro: name=eager-task
// stresscoro: kind=task
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=eagerly started task, awaited later; the owner frees the frame
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::eager_adapter<stresscoro::targets::eager_flaw::none> {};
