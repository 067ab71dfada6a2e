// The libFuzzer entry point for an adapter: bytes -> legal schedule -> driver.
//
// Included after the adapter (`#include "adapter.cpp"` then this header), compiled
// with `$CXX $CXXFLAGS ... $LIB_FUZZING_ENGINE`; `stresscoro export-fuzzer` writes such
// a source with a build.sh. Any engine that drives LLVMFuzzerTestOneInput runs it:
// libFuzzer (also -fork, -jobs), AFL++ through its libFuzzer driver, Centipede,
// ClusterFuzzLite and OSS-Fuzz.
//
// Every input decodes to a legal schedule (stresscoro/generator.hpp, byte_source) with
// the settings below, which `stresscoro replay --fuzzer-input` must be given too.
// Memory errors crash under the engine's sanitizer by themselves; what only the
// driver sees (a frame leaked per its allocation accounting, a continuation lost, a
// double free in an allocator the driver owns, an adapter exception) aborts, so the
// engine saves the input as a crash.
#ifndef STRESSCORO_FUZZER_ENTRY_HPP_INCLUDED
#define STRESSCORO_FUZZER_ENTRY_HPP_INCLUDED

#define STRESSCORO_EXPLORE_NO_MAIN 1
#include <stresscoro/explore.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#ifndef STRESSCORO_FUZZ_MAX_OPS
#define STRESSCORO_FUZZ_MAX_OPS 12
#endif
#ifndef STRESSCORO_FUZZ_SLOTS
#define STRESSCORO_FUZZ_SLOTS 3
#endif
#ifndef STRESSCORO_FUZZ_THREADS
#define STRESSCORO_FUZZ_THREADS 1
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace stresscoro;
    static generator<stresscoro_target> gen(
        {STRESSCORO_FUZZ_MAX_OPS, STRESSCORO_FUZZ_SLOTS, STRESSCORO_FUZZ_THREADS});
    static std::vector<int> schedule;
    static std::vector<long long> shared(explore::driver_words);
    byte_source src(data, size);
    gen.draw(src, schedule);
    const int rc = driver<stresscoro_target>::run(schedule.data(), static_cast<int>(schedule.size()),
                                                  shared.data(), explore::driver_words);
    if (rc != 0) {
        std::fprintf(stderr, "stresscoro: the driver refused a generated schedule (%d)\n", rc);
        std::abort();
    }
    if (explore::log_has_finding(shared.data())) {
        std::fprintf(stderr, "stresscoro: finding in the driver's log (leak, lost continuation, "
                             "double free or adapter exception); replay this input with "
                             "`stresscoro replay --fuzzer-input`\n");
        std::abort();
    }
    return 0;
}

#endif  // STRESSCORO_FUZZER_ENTRY_HPP_INCLUDED
