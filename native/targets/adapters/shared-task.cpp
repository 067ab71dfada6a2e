// stresscoro: name=shared-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none,tsan
// stresscoro: twin=
// stresscoro: summary=reference-counted task, acq_rel decrement
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::shared_task_adapter<stresscoro::targets::refcount_flaw::none> {};
