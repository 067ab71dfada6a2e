// stresscoro: name=task
// stresscoro: kind=task
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=move-only owning task, lazily started, symmetric transfer
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::task_adapter<stresscoro::targets::task_flaw::none> {};
