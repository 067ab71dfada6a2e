// Support for the standalone C++ reproducers stresscoro writes: run a schedule's body
// the way the driver does (on a thread with the adapter's stack size), and nothing more.
#ifndef STRESSCORO_REPLAY_HPP_INCLUDED
#define STRESSCORO_REPLAY_HPP_INCLUDED

#include <stresscoro/adapter.hpp>
#include <stresscoro/probe.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace stresscoro::replay {

/// One object slot of a reproducer: std::optional's emplace, reset and *, plus
/// emplace_from(make), which constructs the object from make()'s prvalue in place
/// (guaranteed copy elision), as the driver does: a type whose move constructor is
/// deleted can be made too, where optional::emplace(make()) would need that move.
template <class T>
class slot {
public:
    slot() noexcept = default;
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    ~slot() { reset(); }

    template <class F>
    T& emplace_from(F make) {
        reset();
        ::new (static_cast<void*>(m_bytes)) T(make());
        m_live = true;
        return **this;
    }
    template <class... Args>
    T& emplace(Args&&... args) {
        return emplace_from([&]() -> T { return T(std::forward<Args>(args)...); });
    }
    void reset() {
        if (m_live) {
            m_live = false;
            (**this).~T();
        }
    }
    T& operator*() noexcept { return *std::launder(reinterpret_cast<T*>(m_bytes)); }

private:
    alignas(T) unsigned char m_bytes[sizeof(T)];
    bool m_live = false;
};

/// Run `body` on a fresh thread whose stack is the adapter's stack_bytes, and wait.
template <class A, class F>
void run_on_stack(F body) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, detail::stack_bytes<A>());
    pthread_t thread;
    auto trampoline = [](void* arg) -> void* {
        (*static_cast<F*>(arg))();
        return nullptr;
    };
    if (pthread_create(&thread, &attr, trampoline, &body) != 0) {
        std::perror("pthread_create");
        std::exit(2);
    }
    pthread_attr_destroy(&attr);
    pthread_join(thread, nullptr);
}

/// Runs a cross-thread schedule's threads turn by turn, exactly as the driver does:
/// the turn counter is a relaxed atomic, so taking turns orders nothing that
/// ThreadSanitizer can see; `send` is the only hand-off, through a mutex-guarded
/// mailbox that the receiver locks at the start of each of its turns.
class turns {
public:
    explicit turns(int threads) : m_threads(threads) {}

    /// Wait for turn `turn`, then collect this thread's mail.
    void begin(int turn, int thread) {
        while (m_turn.load(std::memory_order_relaxed) != turn) sched_yield();
        std::lock_guard<std::mutex> lock(m_mail[thread]);
    }
    void end(int turn) { m_turn.store(turn + 1, std::memory_order_relaxed); }

    /// Hand an object to thread `to`.
    void send(int to) { std::lock_guard<std::mutex> lock(m_mail[to]); }

    /// Start one thread per body, each on the adapter's stack size, and join them all.
    template <class A>
    void run(std::vector<std::function<void()>> bodies) {
        std::vector<pthread_t> threads(bodies.size());
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, detail::stack_bytes<A>());
        auto trampoline = [](void* arg) -> void* {
            (*static_cast<std::function<void()>*>(arg))();
            return nullptr;
        };
        for (std::size_t t = 0; t < bodies.size(); ++t) {
            if (pthread_create(&threads[t], &attr, trampoline, &bodies[t]) != 0) {
                std::perror("pthread_create");
                std::exit(2);
            }
        }
        pthread_attr_destroy(&attr);
        for (pthread_t& t : threads) pthread_join(t, nullptr);
    }

private:
    int m_threads;
    std::atomic<int> m_turn{0};
    std::mutex m_mail[8];
};

}  // namespace stresscoro::replay

#endif  // STRESSCORO_REPLAY_HPP_INCLUDED
