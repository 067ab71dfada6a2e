// Adapters for the built-in composition families (issue 8), in the public adapter form
// (stresscoro/adapter.hpp): objects made from other objects by combinators, awaited by
// real library coroutines. Each target file picks one flaw and names the result
// `stresscoro_target`, exactly as a user's adapter would. No factory or combinator
// body holds a trigger: every bug is reached only through a schedule's ops.
#ifndef STRESSCORO_TARGETS_COMPOSITION_HPP_INCLUDED
#define STRESSCORO_TARGETS_COMPOSITION_HPP_INCLUDED

#include <stresscoro/adapter.hpp>

#include "../compose_task.hpp"
#include "../detail/bodies.hpp"
#include "../eager_task.hpp"
#include "../shared_awaitable.hpp"

#include <coroutine>
#include <utility>

namespace stresscoro::targets {

// The libraries are single-threaded: objects never change threads.
inline constexpr rules single_threaded = {.moves_across_threads = false};

template <compose_flaw Flaw>
struct compose_adapter {
    using object = compose_task<Flaw>;
    static constexpr factory factories[] = {{"value", 0, 100}, {"countdown", 0, 3}};
    static object make(int f, int arg) {
        return f == 0 ? detail::finish_with<object>(arg) : detail::count_down<object>(arg);
    }
    // parent = await_it(std::move(child), add); all = when_all(std::move(a), std::move(b))
    static constexpr combinator combinators[] = {
        {"await_it", {pass::move}, 0, 9},
        {"when_all", {pass::move, pass::move}, 0, 0},
    };
    static object combine(int which, int arg, inputs<object> in) {
        if (which == 0) return await_it<Flaw>(std::move(in[0]), arg);
        return when_all<Flaw>(std::move(in[0]), std::move(in[1]));
    }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
    static constexpr bool awaitable = true;
    static constexpr rules ownership = single_threaded;
};

// No handle(): the flawed task's frame may be gone while its owner still holds the
// handle, and the library itself never reads it then; the checks that need frame
// identity are off for this family (the sanitizer sees the bug).
template <eager_flaw Flaw>
struct eager_adapter {
    using object = eager_task<Flaw>;
    static constexpr factory factories[] = {{"value", 0, 100}, {"countdown", 0, 3}};
    static object make(int f, int arg) {
        return f == 0 ? detail::finish_with<object>(arg) : detail::count_down<object>(arg);
    }
    static constexpr combinator combinators[] = {{"await_it", {pass::move}, 0, 9}};
    static object combine(int, int arg, inputs<object> in) {
        return detail::await_plus<object>(std::move(in[0]), arg);
    }
    static void resume(object& t) { t.resume(); }
    static constexpr bool awaitable = true;
    static constexpr rules ownership = single_threaded;
};

// No use_count(): an awaiting coroutine keeps a copy of the producer in its own frame,
// an owner no slot shows, so the count legitimately exceeds the slots that share it.
template <awaiters_flaw Flaw>
struct shared_awaitable_adapter {
    using object = shared_awaitable<Flaw>;
    static constexpr factory factories[] = {{"ready", 0, 100}, {"countdown", 0, 3}};
    static object make(int f, int arg) {
        return f == 0 ? detail::finish_with<object>(arg) : detail::count_down<object>(arg);
    }
    // waiter = await_it(producer, add): the waiting coroutine holds a copy of the producer.
    static constexpr combinator combinators[] = {{"await_it", {pass::copy}, 0, 9}};
    static object combine(int, int arg, inputs<object> in) {
        return detail::await_plus<object>(in[0], arg);
    }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
    static constexpr bool awaitable = true;
    static constexpr rules ownership = single_threaded;
};

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_COMPOSITION_HPP_INCLUDED
