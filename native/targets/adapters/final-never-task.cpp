// stresscoro: name=final-never-task
// stresscoro: kind=task
// stresscoro: bug_class=final-never-destroy
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=task
// stresscoro: summary=suspend_never at final suspend, and the wrapper destroys too
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::task_adapter<stresscoro::targets::task_flaw::final_never> {};
