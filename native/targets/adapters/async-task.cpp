// stresscoro: name=async-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none,tsan
// stresscoro: threads=2
// stresscoro: twin=
// stresscoro: summary=shared task awaited from any thread, when_all; one atomic state word, counts after results
#include "threaded.hpp"

struct stresscoro_target : stresscoro::targets::async_task_adapter<stresscoro::targets::sync_flaw::none> {};
