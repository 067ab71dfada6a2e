// stresscoro: name=copyable-task
// stresscoro: kind=task
// stresscoro: bug_class=copy-owning-task
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=task
// stresscoro: summary=owning task whose copy shares the raw handle
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::task_adapter<stresscoro::targets::task_flaw::copyable> {};
