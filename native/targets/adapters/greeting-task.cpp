// stresscoro: name=greeting-task
// stresscoro: kind=task
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=coroutine taking std::string by value
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::greeting_adapter<false> {};
