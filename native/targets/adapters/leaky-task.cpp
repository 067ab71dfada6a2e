// stresscoro: name=leaky-task
// stresscoro: kind=task
// stresscoro: bug_class=leak-unfinished
// stresscoro: expected=leak
// stresscoro: sanitizers=asan,none
// stresscoro: twin=task
// stresscoro: summary=destructor destroys only finished frames
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::task_adapter<stresscoro::targets::task_flaw::leaks_unfinished> {};
