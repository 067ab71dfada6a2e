// Annotations that let ThreadSanitizer verify a reference count synchronised by
// fences, which GCC's and LLVM's TSan do not model (gcc says so with -Wtsan).
//
// A count that decrements with memory_order_release and, on reaching zero, issues
// std::atomic_thread_fence(memory_order_acquire) is correct, but TSan sees only the
// release: every race report around the last owner's destroy is then false. Add one
// line after the fence:
//
//     if (count.fetch_sub(1, std::memory_order_release) == 1) {
//         std::atomic_thread_fence(std::memory_order_acquire);
//         STRESSCORO_TSAN_ACQUIRE(&count);
//         destroy();
//     }
//
// It tells TSan "acquire everything released on this word", which is what the fence
// achieves for that word. Limits: it covers synchronisation through that one word
// only (a fence that pairs with releases on other variables is still invisible), it
// states what the code intends rather than proving the fence is placed right, and it
// compiles to nothing unless STRESSCORO_TSAN_FENCE_ANNOTATIONS is defined in a TSan
// build (`stresscoro fuzz --tsan-fence-annotations`).
#ifndef STRESSCORO_TSAN_FENCE_HPP_INCLUDED
#define STRESSCORO_TSAN_FENCE_HPP_INCLUDED

#include <stresscoro/detail/config.hpp>

#if defined(STRESSCORO_TSAN) && defined(STRESSCORO_TSAN_FENCE_ANNOTATIONS)
extern "C" void __tsan_acquire(void* address);
extern "C" void __tsan_release(void* address);
#define STRESSCORO_TSAN_ACQUIRE(address) __tsan_acquire(const_cast<void*>(static_cast<const volatile void*>(address)))
#define STRESSCORO_TSAN_RELEASE(address) __tsan_release(const_cast<void*>(static_cast<const volatile void*>(address)))
#else
#define STRESSCORO_TSAN_ACQUIRE(address) static_cast<void>(address)
#define STRESSCORO_TSAN_RELEASE(address) static_cast<void>(address)
#endif

#endif  // STRESSCORO_TSAN_FENCE_HPP_INCLUDED
