// stresscoro: name=inline-resume-when-all-task
// stresscoro: kind=task
// stresscoro: bug_class=resume-inside-await-suspend
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=compose-task
// stresscoro: summary=when_all's last child resumes the awaiting coroutine inside await_suspend
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::compose_adapter<stresscoro::targets::compose_flaw::resumes_inline> {};
