// Which sanitizer this translation unit is built with, for GCC and Clang alike
// (GCC defines __SANITIZE_*__, Clang answers __has_feature).
#ifndef STRESSCORO_DETAIL_CONFIG_HPP_INCLUDED
#define STRESSCORO_DETAIL_CONFIG_HPP_INCLUDED

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRESSCORO_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define STRESSCORO_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(STRESSCORO_ASAN)
#define STRESSCORO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(STRESSCORO_TSAN)
#define STRESSCORO_TSAN 1
#endif

// Harness code whose own accesses a sanitizer has nothing to check (the schedule
// generator: its state is its own, on its stack). Uninstrumented, it runs several times
// faster, and the explorer's time goes to the schedules. Everything it calls inline must
// carry the same attribute, or the compiler will not inline it.
#if defined(__clang__)
#define STRESSCORO_UNCHECKED __attribute__((no_sanitize("address", "thread")))
#else
// GCC builds the harness at -O1 (its TSan misses a race at -O2); harness code the
// sanitizers do not look at may as well be optimised fully.
#define STRESSCORO_UNCHECKED __attribute__((no_sanitize("address", "thread"), optimize("O2")))
#endif

#endif  // STRESSCORO_DETAIL_CONFIG_HPP_INCLUDED
