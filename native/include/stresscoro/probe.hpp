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

    /// The handle a library sees; valid as long as this probe lives.
    std::coroutine_handle<> handle() noexcept {
        return std::coroutine_handle<>::from_address(this);
    }
};

namespace detail {
// Set by the driver before each op so a resume can be attributed to it.
inline thread_local int t_probe_op = -1;

inline void probe_resume(probe_frame* p) noexcept {
    if (p->m_resumes++ == 0) p->m_first_resume_op = t_probe_op;
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

}  // namespace stresscoro

#endif  // STRESSCORO_PROBE_HPP_INCLUDED
