// Synthetic coroutine frames that stand in for an awaiting coroutine.
//
// GCC and Clang lay a coroutine frame out as two function pointers, resume then
// destroy, followed by the promise; a coroutine_handle is the frame's address.
// A struct with the same two leading pointers can therefore be handed to a library
// as a continuation: when the library resumes it, our resume function runs and
// records the resume; when the library destroys it (a handle it never owned), our
// destroy function records that. The layout is not a documented contract, so
// native/selftest/abi_selftest.cpp checks it on every compiler before any build.
#ifndef STRESSCORO_PROBE_HPP_INCLUDED
#define STRESSCORO_PROBE_HPP_INCLUDED

#include <stresscoro/adapter.hpp>
#include <stresscoro/detail/event_log.hpp>

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

namespace stresscoro {

struct probe_frame {
    void (*m_resume)(probe_frame*);
    void (*m_destroy)(probe_frame*);
    int m_id = 0;
    int m_resumes = 0;
    int m_destroys = 0;
    int m_first_resume_op = -1;
    int m_op = -1;                            // the op that made it (probes living in slots)
    void* m_child = nullptr;                  // the awaited frame, where the adapter names it
    void (*m_free)(probe_frame*) = nullptr;   // frees a probe living in a slot

    /// The handle a library sees; valid as long as this probe lives.
    std::coroutine_handle<> handle() noexcept {
        return std::coroutine_handle<>::from_address(this);
    }
};

namespace detail {
// Set by the driver before each op so a resume can be attributed to it. Read and
// written as relaxed atomics: harness bookkeeping, never a race or an edge for TSan
// (schedule threads that are fibers of one OS thread share it).
inline thread_local int t_probe_op = -1;
STRESSCORO_NO_TSAN inline void set_probe_op(int op) noexcept { (__atomic_store_n)(&t_probe_op, op, __ATOMIC_RELAXED); }
inline int probe_op() noexcept { return (__atomic_load_n)(&t_probe_op, __ATOMIC_RELAXED); }

inline void probe_resume(probe_frame* p) noexcept {
    if (p->m_resumes++ == 0) p->m_first_resume_op = probe_op();
}
inline void probe_destroy(probe_frame* p) noexcept { ++p->m_destroys; }
}  // namespace detail

/// Initialise a probe in place: both function pointers set, counters zero.
inline void init_probe(probe_frame& p, int id) noexcept {
    p.m_resume = &detail::probe_resume;
    p.m_destroy = &detail::probe_destroy;
    p.m_id = id;
    p.m_resumes = 0;
    p.m_destroys = 0;
    p.m_first_resume_op = -1;
    p.m_op = -1;
    p.m_child = nullptr;
    p.m_free = nullptr;
}

template <class T>
concept lvalue_awaitable = awaitable_from<T, std::coroutine_handle<>, false>;

/// `co_await value` from `probe`: exactly what an awaiting coroutine does, with the
/// probe recording whether and how often the library resumes it.
template <bool Rvalue = false, class T>
void await_from(T& value, probe_frame& probe) {
    decltype(auto) aw = detail::awaiter_of<Rvalue>(value);
    if (!aw.await_ready()) {
        using result = decltype(aw.await_suspend(probe.handle()));
        if constexpr (std::is_void_v<result>) {
            aw.await_suspend(probe.handle());
        } else if constexpr (std::is_same_v<result, bool>) {
            if (!aw.await_suspend(probe.handle())) detail::probe_resume(&probe);
        } else {
            aw.await_suspend(probe.handle()).resume();
        }
    } else {
        detail::probe_resume(&probe);
    }
    if (probe.m_resumes > 0) static_cast<void>(aw.await_resume());
}

/// A probe that lives in a slot: the frame and, like a real suspended coroutine's
/// frame, the awaiter it is suspended on. The awaiter lives until the probe is freed
/// (an awaiter's destructor may take the continuation back); on its first resume the
/// probe calls await_resume, as the awaiting coroutine would.
template <class Aw>
struct held_probe {
    probe_frame m_frame;  // first: the handle is the address of the whole
    Aw m_aw;
};

namespace detail {
template <class Aw>
void held_probe_resume(probe_frame* p) noexcept {
    probe_resume(p);
    if (p->m_resumes == 1) {
        try {
            static_cast<void>(reinterpret_cast<held_probe<Aw>*>(p)->m_aw.await_resume());
        } catch (...) {
        }
    }
}
template <class Aw>
void held_probe_free(probe_frame* p) noexcept {
    delete reinterpret_cast<held_probe<Aw>*>(p);
}
}  // namespace detail

/// A new probe, living on the heap until `free_probe`, suspended on `co_await value`
/// the way a coroutine is: if await_ready says so or await_suspend declines, the probe
/// is resumed at once.
template <bool Rvalue = false, class T>
probe_frame* await_in_new_probe(T& value, int id, int op) {
    using aw_type = decltype(detail::awaiter_of<Rvalue>(value));
    auto* held = new held_probe<aw_type>{probe_frame{}, detail::awaiter_of<Rvalue>(value)};
    probe_frame& probe = held->m_frame;
    init_probe(probe, id);
    probe.m_resume = &detail::held_probe_resume<aw_type>;
    probe.m_free = &detail::held_probe_free<aw_type>;
    probe.m_op = op;
    auto& aw = held->m_aw;
    if (!aw.await_ready()) {
        using result = decltype(aw.await_suspend(probe.handle()));
        if constexpr (std::is_void_v<result>) {
            aw.await_suspend(probe.handle());
        } else if constexpr (std::is_same_v<result, bool>) {
            if (!aw.await_suspend(probe.handle())) probe.m_resume(&probe);
        } else {
            aw.await_suspend(probe.handle()).resume();
        }
    } else {
        probe.m_resume(&probe);
    }
    return &probe;
}

/// Free a probe made by await_in_new_probe (its awaiter's destructor runs).
inline void free_probe(probe_frame* p) noexcept { p->m_free(p); }

}  // namespace stresscoro

#endif  // STRESSCORO_PROBE_HPP_INCLUDED
