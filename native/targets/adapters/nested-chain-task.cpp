// stresscoro: name=nested-chain-task
// stresscoro: kind=chain
// stresscoro: bug_class=nested-resume
// stresscoro: expected=stack-overflow
// stresscoro: sanitizers=asan
// stresscoro: twin=chain-task
// stresscoro: summary=await chain that resumes each link from inside the last
// GCC keeps symmetric transfer stack-flat only through sibling calls, which -O1
// leaves off and which ASan's use-after-scope and TSan's entry/exit hooks block.
// stresscoro: cxxflags=-foptimize-sibling-calls -fno-sanitize-address-use-after-scope --param=tsan-instrument-func-entry-exit=0
#include "families.hpp"

struct stresscoro_target : stresscoro::targets::chain_adapter<stresscoro::targets::chain_flaw::nested_resume> {};
