// stresscoro: name=lost-wakeup-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=lost-wakeup
// stresscoro: expected=leak
// stresscoro: sanitizers=asan,none
// stresscoro: threads=2
// stresscoro: twin=async-task
// stresscoro: summary=finished flag and waiter list in two words: a completion between await_ready and the push loses the waiter
#include "threaded.hpp"

struct stresscoro_target : stresscoro::targets::async_task_adapter<stresscoro::targets::sync_flaw::lost_wakeup> {};
