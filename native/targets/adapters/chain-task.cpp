// stresscoro: name=chain-task
// stresscoro: kind=chain
// stresscoro: bug_class=
// stresscoro: expected=clean
// stresscoro: sanitizers=asan,none
// stresscoro: twin=
// stresscoro: summary=await chain by symmetric transfer, on a 128 KiB stack
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::chain_adapter<stresscoro::targets::chain_flaw::none> {};
