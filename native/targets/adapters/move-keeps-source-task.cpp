// stresscoro: name=move-keeps-source-task
// stresscoro: kind=task
// stresscoro: bug_class=move-keeps-source
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=task
// stresscoro: summary=move constructor that leaves the source owning
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::task_adapter<stresscoro::targets::task_flaw::move_keeps_source> {};
