// stresscoro: name=when-all-counter-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=when-all-counter
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: threads=2
// stresscoro: twin=async-task
// stresscoro: summary=when_all child counts itself done before it stores its result
#include "threaded.hpp"

struct stresscoro_target : stresscoro::targets::async_task_adapter<stresscoro::targets::sync_flaw::count_before_store> {};
