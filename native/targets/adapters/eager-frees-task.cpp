// stresscoro: name=eager-frees-task
// stresscoro: kind=task
// stresscoro: bug_class=eager-final-frees
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=eager-task
// stresscoro: summary=eager task frees its frame at final suspend while the owner holds it
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::eager_adapter<stresscoro::targets::eager_flaw::frees_at_final> {};
