// stresscoro: name=generator
// stresscoro: kind=generator
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=move-only generator of 0..n-1
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::generator_adapter {};
