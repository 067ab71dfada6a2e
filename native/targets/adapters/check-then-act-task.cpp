// stresscoro: name=check-then-act-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=check-then-act-release
// stresscoro: expected=leak
// stresscoro: sanitizers=asan,none
// stresscoro: threads=2
// stresscoro: twin=async-task
// stresscoro: summary=release reads the count, then decrements: two last owners both read 2
#include "threaded.hpp"

struct stresscoro_target : stresscoro::targets::async_task_adapter<stresscoro::targets::sync_flaw::check_then_act_release> {};
