// stresscoro: name=nested-chain-task
// stresscoro: kind=chain
// stresscoro: bug_class=nested-resume
// stresscoro: expected=stack-overflow
// stresscoro: sanitizers=asan
// stresscoro: twin=chain-task
// stresscoro: summary=await chain that resumes each link from inside the last
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::chain_adapter<stresscoro::targets::chain_flaw::nested_resume> {};
