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
//         static constexpr bool awaitable = true;                // optional, see below
//         static constexpr std::size_t stack_bytes = 1 << 20;    // optional: per-thread stack
//
//         // Composition (all optional). A combinator makes an object from objects in
//         // other slots: schedule op make_from(dst, combinator, arg, src, src2).
//         static constexpr stresscoro::combinator combinators[] = {
//             {"await_it", {stresscoro::pass::move}, 0, 0},      // name, inputs, arg range
//             {"when_all", {stresscoro::pass::ref, stresscoro::pass::ref}, 0, 0},
//         };
//         static object combine(int which, int arg, stresscoro::inputs<object> in);
//         // Ops of the library's own over zero to two slots: schedule op call(fn, arg, x, y).
//         static constexpr stresscoro::custom_op ops[] = {
//             {"spawn", {stresscoro::pass::consume}, 0, 0},
//             {"poll", {}, 0, 0},
//         };
//         static void apply(int which, int arg, stresscoro::inputs<object> in);
//         static void begin();        // before every schedule: create a loop or context
//         static void step();         // an op: one turn of the loop, one pending event
//         static void run_pending();  // end of schedule, before the drops: drain ready work
//         static void end();          // after the drops, before leak accounting
//
//         static constexpr stresscoro::rules ownership = {   // optional: what it promises
//             .copies_dropped_across_threads = true,          // and what it forbids
//         };
//     };
//
// Copy, move, copy/move assignment and swap are never declared: the driver reads
// them from `object` with type traits, so a move-only type is never copied.
//
// Inputs of a combinator or custom op (`in[i]` is an `object&`, in declared order):
//   pass::copy     the adapter copies it; the source slot is unchanged;
//   pass::move     the adapter std::moves from it; the source slot holds a moved-from object;
//   pass::ref      the adapter may keep referring to it (an lvalue: `co_await in[0]`);
//   pass::consume  the object is handed over (moved from); the driver then destroys the
//                  husk and the slot is empty.
//
// `co_await obj` from a probe (the `probe` op, a synthetic awaiting coroutine that
// lives in a slot of its own): `awaitable = true` asks for it (a build error if the
// object cannot be awaited from a plain std::coroutine_handle<>), `awaitable = false`
// turns it off, and without a declaration it is used when it compiles and otherwise
// left out with a note. A library whose await_suspend accepts only its own promise
// types does its awaiting in a combinator written as one of its own coroutines.
//
// Several library types in one adapter (a task<int> awaited by a task<void>, a
// when_all awaitable of its own type): use `stresscoro::one_of<A, B, ...>` as the
// object type (a std::variant; `co_await` is forwarded to the held alternative,
// `visit` reaches it for resume, touch and handle).
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
#include <variant>

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

    // Declared preconditions: what the library forbids. A schedule that breaks one is
    // never generated and never reported; a finding names the set it was found under.
    // Designated initialisers go in this order.

    /// Any op other than drop, assign-to, make-into on a moved-from object (the
    /// standard library's reading forbids it: valid but unspecified).
    bool use_after_move = false;
    /// `a = a` by copy.
    bool self_copy_assign = true;
    /// `a = std::move(a)`.
    bool self_move_assign = false;
    /// `swap(a, a)`.
    bool self_swap = true;
    /// A second co_await of the same object (false for one-shot awaitables).
    bool await_twice = false;
    /// `co_await obj` on an lvalue; if false the probe awaits `std::move(obj)`.
    bool await_lvalue = true;
};

/// How a combinator or custom op takes one of its inputs (see the form above).
enum class pass : unsigned char { none = 0, copy, move, ref, consume };

/// A named way to make an object from one or two objects in other slots.
struct combinator {
    const char* name;
    pass in[2];
    int arg_min;
    int arg_max;
};

/// An op of the library's own over zero to two slots (pass::ref or pass::consume).
struct custom_op {
    const char* name;
    pass in[2];
    int arg_min;
    int arg_max;
};

/// The objects a combinator or custom op receives, in declared order.
template <class T>
class inputs {
public:
    inputs() noexcept = default;
    inputs(T* first, T* second, int count) noexcept : m_items{first, second}, m_count(count) {}
    T& operator[](int i) const noexcept { return *m_items[i]; }
    int size() const noexcept { return m_count; }

private:
    T* m_items[2] = {nullptr, nullptr};
    int m_count = 0;
};

namespace detail {

/// `co_await value` as a coroutine would spell it: the awaiter, from an lvalue or
/// (Rvalue) from std::move(value).
template <bool Rvalue, class T>
decltype(auto) awaiter_of(T& value) {
    if constexpr (Rvalue) {
        if constexpr (requires { std::move(value).operator co_await(); }) {
            return std::move(value).operator co_await();
        } else if constexpr (requires { operator co_await(std::move(value)); }) {
            return operator co_await(std::move(value));
        } else {
            return (value);
        }
    } else if constexpr (requires { value.operator co_await(); }) {
        return value.operator co_await();
    } else if constexpr (requires { operator co_await(value); }) {
        return operator co_await(value);
    } else {
        return (value);
    }
}

}  // namespace detail

/// True when `co_await value` compiles in a coroutine whose handle is an H: the
/// awaiter's await_ready AND its await_suspend(H), the call that really happens.
template <class T, class H, bool Rvalue = false>
concept awaitable_from = requires(T& value, H h) {
    { detail::awaiter_of<Rvalue>(value).await_ready() } -> std::convertible_to<bool>;
    detail::awaiter_of<Rvalue>(value).await_suspend(h);
};

/// Several library types in one slot type. Copyable, movable and swappable as the
/// alternatives are; `co_await` is forwarded to the held alternative, and `visit(f)`
/// calls f with it (for resume, touch, handle).
template <class... Ts>
class one_of : public std::variant<Ts...> {
public:
    using std::variant<Ts...>::variant;

    template <class T>
    bool holds() const noexcept { return std::holds_alternative<T>(*this); }
    template <class T>
    T& get() { return std::get<T>(*this); }
    template <class F>
    decltype(auto) visit(F&& f) { return std::visit(std::forward<F>(f), base()); }
    template <class F>
    decltype(auto) visit(F&& f) const { return std::visit(std::forward<F>(f), base()); }

    template <bool Rvalue>
    class awaiter {
    public:
        explicit awaiter(one_of& v) { construct(v, std::index_sequence_for<Ts...>{}); }
        bool await_ready() {
            return std::visit([](auto& h) -> bool {
                if constexpr (requires { h.m_aw; }) return h.m_aw.await_ready(); else return true;
            }, m_held);
        }
        template <class P>
            requires(awaitable_from<Ts, std::coroutine_handle<P>, Rvalue> && ...)
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> me) {
            return std::visit([&](auto& h) -> std::coroutine_handle<> {
                if constexpr (requires { h.m_aw; }) {
                    using r = decltype(h.m_aw.await_suspend(me));
                    if constexpr (std::is_void_v<r>) {
                        h.m_aw.await_suspend(me);
                        return std::noop_coroutine();
                    } else if constexpr (std::is_same_v<r, bool>) {
                        if (h.m_aw.await_suspend(me)) return std::noop_coroutine();
                        return me;
                    } else {
                        return h.m_aw.await_suspend(me);
                    }
                } else {
                    return me;
                }
            }, m_held);
        }
        void await_resume() {
            std::visit([](auto& h) {
                if constexpr (requires { h.m_aw; }) static_cast<void>(h.m_aw.await_resume());
            }, m_held);
        }

    private:
        template <class T>
        struct held {
            explicit held(T& value) : m_aw(detail::awaiter_of<Rvalue>(value)) {}
            decltype(detail::awaiter_of<Rvalue>(std::declval<T&>())) m_aw;
        };
        template <std::size_t... I>
        void construct(one_of& v, std::index_sequence<I...>) {
            static_cast<void>(((v.index() == I
                                    ? (m_held.template emplace<I + 1>(std::get<I>(v)), true)
                                    : false) || ...));
        }
        std::variant<std::monostate, held<Ts>...> m_held;
    };

    awaiter<false> operator co_await() & { return awaiter<false>(*this); }
    awaiter<true> operator co_await() && { return awaiter<true>(*this); }

private:
    std::variant<Ts...>& base() noexcept { return *this; }
    const std::variant<Ts...>& base() const noexcept { return *this; }
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
concept declares_not_awaitable = requires { requires !A::awaitable; };

template <class A>
concept has_combinators = requires(int w, int a, inputs<typename A::object> in) {
    A::combinators[0].name;
    { A::combine(w, a, in) } -> std::same_as<typename A::object>;
};

template <class A>
concept has_custom_ops = requires(int w, int a, inputs<typename A::object> in) {
    A::ops[0].name;
    A::apply(w, a, in);
};

template <class A>
concept has_begin = requires { A::begin(); };
template <class A>
concept has_end = requires { A::end(); };
template <class A>
concept has_run_pending = requires { A::run_pending(); };
template <class A>
concept has_step = requires { A::step(); };

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
