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

#endif  // STRESSCORO_DETAIL_CONFIG_HPP_INCLUDED
