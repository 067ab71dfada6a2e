// Checks the one ABI assumption probes rely on: a coroutine handle is the address of a
// frame that starts with the resume and destroy function pointers. Built and run by
// stresscoro/build.py once per compiler; prints "abi ok" and exits 0 when it holds.
#include <stresscoro/probe.hpp>

#include <coroutine>
#include <cstdio>

namespace {

struct lazy {
    struct promise_type {
        std::coroutine_handle<> m_next = std::noop_coroutine();
        lazy get_return_object() { return lazy{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        auto final_suspend() noexcept {
            struct to_next {
                bool await_ready() noexcept { return false; }
                std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                    return h.promise().m_next;
                }
                void await_resume() noexcept {}
            };
            return to_next{};
        }
        void return_void() {}
        void unhandled_exception() {}
    };
    std::coroutine_handle<promise_type> m_handle;
};

lazy body() { co_return; }

int fail(const char* what) {
    std::printf("abi mismatch: %s\n", what);
    return 1;
}

}  // namespace

int main() {
    stresscoro::probe_frame probe;
    stresscoro::init_probe(probe, 7);
    std::coroutine_handle<> h = probe.handle();
    if (h.done()) return fail("a probe with a resume pointer reads as done");
    h.resume();
    if (probe.m_resumes != 1) return fail("handle.resume() did not call the first pointer");
    h.destroy();
    if (probe.m_destroys != 1) return fail("handle.destroy() did not call the second pointer");

    // A real frame hands control to the probe at final suspend, as a library would.
    lazy l = body();
    l.m_handle.promise().m_next = probe.handle();
    l.m_handle.resume();
    if (probe.m_resumes != 2) return fail("symmetric transfer to a probe did not resume it");
    if (!l.m_handle.done()) return fail("a finished frame does not read as done");
    void** frame = static_cast<void**>(l.m_handle.address());
    if (frame[1] == nullptr) return fail("a frame does not start with two function pointers");
    l.m_handle.destroy();
    std::printf("abi ok\n");
    return 0;
}
