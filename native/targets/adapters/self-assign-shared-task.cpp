// stresscoro: name=self-assign-shared-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=copy-assign-self
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=shared-task
// stresscoro: summary=copy assignment releases before it acquires
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::shared_task_adapter<stresscoro::targets::refcount_flaw::no_self_check> {};
