// stresscoro: name=overwritten-awaiter-task
// stresscoro: kind=shared_task
// stresscoro: bug_class=awaiter-overwritten
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=shared-awaitable
// stresscoro: summary=shared task keeps one awaiter record; a later awaiter takes it over
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::shared_awaitable_adapter<stresscoro::targets::awaiters_flaw::overwritten> {};
