// Support for the standalone C++ reproducers stresscoro writes: run a schedule's body
// the way the driver does (on a thread with the adapter's stack size), and nothing more.
#ifndef STRESSCORO_REPLAY_HPP_INCLUDED
#define STRESSCORO_REPLAY_HPP_INCLUDED

#include <stresscoro/adapter.hpp>
#include <stresscoro/probe.hpp>

#include <pthread.h>

#include <cstdio>
#include <cstdlib>

namespace stresscoro::replay {

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

}  // namespace stresscoro::replay

#endif  // STRESSCORO_REPLAY_HPP_INCLUDED
