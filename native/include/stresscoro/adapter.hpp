// The adapter form: how a coroutine library describes one of its types to stresscoro.
//
// An adapter file is a C++ source that includes this header and the library, and
// defines one struct named `stresscoro_target`:
//
//     struct stresscoro_target {
//         using object = mylib::task<int>;                       // required
//         static constexpr stresscoro::factory factories[] = {   // required, 1..8 entries
//             {"value", 0, 100},        // name, smallest and largest integer argument
//         };
//         static object make(int factory, int arg);              // required
//         static void resume(object&);                           // optional: resume / next
//         static void touch(object&);                            // optional: write shared state
//         static std::coroutine_handle<> handle(const object&);  // optional: frame identity
//         static long use_count(const object&);                  // optional: shared ownership
//         static constexpr bool awaitable = true;                // optional: `co_await obj`
//         static constexpr std::size_t stack_bytes = 1 << 20;    // optional: per-thread stack
//         static constexpr stresscoro::rules ownership = {         // optional: what it promises
//             .copies_dropped_across_threads = true,
//         };
//     };
//
// Copy, move, copy/move assignment and swap are never declared: the driver reads
// them from `object` with type traits, so a move-only type is never copied.
//
// Lines at the top of the file starting with `// stresscoro:` carry metadata for the
// Python side (name, kind, bug_class, expected, sanitizers, twin, summary); see
// stresscoro/targets.py.
#ifndef STRESSCORO_ADAPTER_HPP_INCLUDED
#define STRESSCORO_ADAPTER_HPP_INCLUDED

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace stresscoro {

/// One way to construct an object: a name for reports and an inclusive argument range.
struct factory {
    const char* name;
    int arg_min;
    int arg_max;
};

/// What the library promises about its type; stresscoro generates only schedules these
/// rules allow, and a finding names the rule it breaks. The defaults are the
/// conservative reading of the standard library's own rules ([res.on.data.races]):
/// an object may change threads through a proper hand-off, nothing more.
struct rules {
    /// An object may be handed to another thread (through a synchronised queue).
    bool moves_across_threads = true;
    /// Copies sharing one frame may be dropped on different threads with no
    /// synchronisation between them (the library's reference count must order it).
    bool copies_dropped_across_threads = false;
    /// resume() on a finished coroutine is allowed (a no-op); if false, the driver
    /// never resumes a finished frame (it needs `handle()` to tell).
    bool resume_finished = true;
    /// Copies sharing one frame may be resumed, touched or awaited from different
    /// threads without synchronisation of their own. If false (the default), all of a
    /// frame's writes come from one thread, the first that wrote it.
    bool resume_from_any_thread = false;
};

namespace detail {

template <class A>
concept has_resume = requires(typename A::object& o) { A::resume(o); };

template <class A>
concept has_touch = requires(typename A::object& o) { A::touch(o); };

template <class A>
concept has_handle = requires(const typename A::object& o) {
    { A::handle(o) } -> std::convertible_to<std::coroutine_handle<>>;
};

template <class A>
concept has_use_count = requires(const typename A::object& o) {
    { A::use_count(o) } -> std::convertible_to<long>;
};

template <class A>
concept declares_awaitable = requires { requires A::awaitable; };

template <class A>
constexpr rules rules_of() {
    if constexpr (requires { A::ownership; }) {
        return A::ownership;
    } else {
        return rules{};
    }
}

template <class A>
constexpr std::size_t stack_bytes() {
    if constexpr (requires { A::stack_bytes; }) {
        return A::stack_bytes;
    } else {
        return std::size_t{1} << 20;
    }
}

}  // namespace detail

/// The adapter a driver can run: an object type and at least one factory.
template <class A>
concept adapter = requires(int f, int a) {
    typename A::object;
    { A::make(f, a) } -> std::same_as<typename A::object>;
    A::factories[0].name;
    requires std::is_destructible_v<typename A::object>;
};

}  // namespace stresscoro

#endif  // STRESSCORO_ADAPTER_HPP_INCLUDED
