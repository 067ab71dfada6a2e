// stresscoro: name=shared-awaitable
// stresscoro: kind=shared_task
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=shared eager task with any number of awaiters, each with a record of its own
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::shared_awaitable_adapter<stresscoro::targets::awaiters_flaw::none> {};
