// stresscoro: name=relaxed-shared-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=relaxed-refcount
// stresscoro: expected=data-race
// stresscoro: sanitizers=tsan
// stresscoro: twin=shared-task
// stresscoro: summary=reference count decremented with relaxed order
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::shared_task_adapter<stresscoro::targets::refcount_flaw::relaxed_decrement> {};
