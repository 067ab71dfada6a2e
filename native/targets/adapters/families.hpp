// Adapters for the built-in target families, written in the public adapter form
// (stresscoro/adapter.hpp). Each target file picks one flaw and names the result
// `stresscoro_target`, exactly as a user's adapter would.
#ifndef STRESSCORO_TARGETS_FAMILIES_HPP_INCLUDED
#define STRESSCORO_TARGETS_FAMILIES_HPP_INCLUDED

#include <stresscoro/adapter.hpp>

#include "../chain_task.hpp"
#include "../generator.hpp"
#include "../greeting.hpp"
#include "../shared_task.hpp"
#include "../task.hpp"

#include <coroutine>
#include <string>

namespace stresscoro::targets {

template <task_flaw Flaw>
struct task_adapter {
    using object = task<Flaw>;
    static constexpr factory factories[] = {{"value", 0, 100}, {"sum", 0, 8}};
    static object make(int f, int arg) { return f == 0 ? value_task<Flaw>(arg) : sum_task<Flaw>(arg); }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
    static constexpr bool awaitable = true;
};

struct generator_adapter {
    using object = generator;
    static constexpr factory factories[] = {{"iota", 0, 8}};
    static object make(int, int count) { return iota(count); }
    static void resume(object& g) { g.next(); }
    static std::coroutine_handle<> handle(const object& g) { return g.raw_handle(); }
};

template <refcount_flaw Flaw>
struct shared_task_adapter {
    using object = shared_task<Flaw>;
    static constexpr factory factories[] = {{"value", 0, 100}};
    static object make(int, int arg) { return shared_value<Flaw>(arg); }
    static void resume(object& t) { t.resume(); }
    static void touch(object& t) { t.observe(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
    static long use_count(const object& t) { return t.use_count(); }
    // The point of a shared task: copies may be released from any thread.
    static constexpr rules ownership = {.copies_dropped_across_threads = true};
};

template <chain_flaw Flaw>
struct chain_adapter {
    using object = chain_task<Flaw>;
    static constexpr factory factories[] = {{"chain", 0, 20000}};
    static object make(int, int depth) { return chain<Flaw>(depth); }
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
    static constexpr bool awaitable = true;
    // Small on purpose: a chain that grows the stack per link overflows it quickly.
    static constexpr std::size_t stack_bytes = 128 * 1024;
};

template <bool KeepsOnlyAView>
struct greeting_adapter {
    using object = task<>;
    static constexpr factory factories[] = {{"vowels", 0, 64}};
    static object make(int, int length) {
        std::string name = make_name(length);
        if constexpr (KeepsOnlyAView) {
            return count_vowels_view(name);
        } else {
            return count_vowels_copy(name);
        }
    }  // `name` dies here; only a copy in the frame may be read later
    static void resume(object& t) { t.resume(); }
    static std::coroutine_handle<> handle(const object& t) { return t.raw_handle(); }
};

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_FAMILIES_HPP_INCLUDED
