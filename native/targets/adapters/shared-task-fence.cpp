// stresscoro: name=shared-task-fence
// stresscoro: kind=shared_task
// stresscoro: bug_class=
// stresscoro: expected=unverifiable
// stresscoro: sanitizers=asan,tsan
// stresscoro: twin=
// stresscoro: summary=reference-counted task, release decrement and acquire fence (correct; TSan cannot see fences)
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::shared_task_adapter<stresscoro::targets::refcount_flaw::fence> {};
