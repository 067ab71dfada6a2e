// stresscoro: name=dangling-view-task
// stresscoro: kind=task
// stresscoro: bug_class=dangling-parameter
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=greeting-task
// stresscoro: summary=coroutine keeps a string_view of the caller's string
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::greeting_adapter<true> {};
