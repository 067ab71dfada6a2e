// stresscoro: name=dangling-when-all-task
// stresscoro: kind=task
// stresscoro: bug_class=combinator-dangling-temporaries
// stresscoro: expected=heap-use-after-free
// stresscoro: sanitizers=asan
// stresscoro: twin=compose-task
// stresscoro: summary=when_all refers to the tasks it was given instead of owning them
#include "composition.hpp"

struct stresscoro_target : stresscoro::targets::compose_adapter<stresscoro::targets::compose_flaw::keeps_references> {};
