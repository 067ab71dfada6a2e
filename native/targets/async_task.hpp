// A reference-counted task that coroutines on any thread may await, and a when_all over
// two of them, written for threads: copies share one frame and may be dropped, resumed
// and awaited on any thread. The producer runs when an owner resumes it (awaiting never
// starts it); when it finishes, it resumes every coroutine waiting for it, on the thread
// that finished it. A running task owns itself until it finishes, so a when_all whose
// owners let go while it waits still finishes.
//
// Work a coroutine is waiting for is also kept on a pending list, which
// `drain_pending()` starts at the end of the program's work (like a run loop drained at
// shutdown), so that no waiter stays suspended for ever.
//
// Every shared word is an atomic, and each memory order says why it is enough. Each
// seeded flaw (sync_flaw) is reachable only when another thread runs between two atomic
// operations of one call; run whole call by whole call, every flawed build behaves.
//
// STRESSCORO_TARGETS_HOOK(point) marks the gap each flaw needs. It compiles to nothing;
// the standalone demonstrations in tests/preemption/ define it to hold one thread there
// while another runs.
#ifndef STRESSCORO_TARGETS_ASYNC_TASK_HPP_INCLUDED
#define STRESSCORO_TARGETS_ASYNC_TASK_HPP_INCLUDED

#include <atomic>
#include <coroutine>
#include <exception>
#include <utility>

#ifndef STRESSCORO_TARGETS_HOOK
#define STRESSCORO_TARGETS_HOOK(point) static_cast<void>(0)
#endif

namespace stresscoro::targets {

enum class sync_flaw {
    none,
    // release() reads the count, then decides: two last owners dropping at once both
    // read 2, both decrement, and nobody destroys the frame.
    check_then_act_release,
    // The finished flag and the waiter list are two words: a completion that runs
    // between an awaiter's await_ready (not finished) and its joining the list takes
    // the list without it, and the awaiter is never resumed.
    lost_wakeup,
    // A when_all child counts itself finished before it stores its result: the last
    // child may resume the parent in between, which reads the results and frees the
    // children, while the first still writes from its own freed frame.
    count_before_store,
};

template <sync_flaw Flaw = sync_flaw::none>
class async_task {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    /// One waiting coroutine: a record in its awaiter, linked while it waits.
    struct waiter {
        std::coroutine_handle<> m_continuation;
        waiter* m_next = nullptr;
    };

    /// At final suspend: mark the task finished, resume whoever was waiting, then give up
    /// the reference the running body held (which may free the frame).
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        void await_suspend(handle_type h) const noexcept {
            waiter* w = h.promise().complete();
            while (w != nullptr) {
                waiter* next = w->m_next;  // the record lives in a frame that may end now
                w->m_continuation.resume();
                w = next;
            }
            release(h);
        }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        promise_type() noexcept = default;
        async_task get_return_object() noexcept { return async_task{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        /// The value the state word holds once the task has finished: an address no
        /// waiter record can have.
        void* done_mark() noexcept { return this; }

        /// Mark the task finished and take the list of waiters.
        waiter* complete() noexcept {
            if constexpr (Flaw == sync_flaw::lost_wakeup) {
                // release: an awaiter that reads the flag then reads m_value.
                m_done.store(true, std::memory_order_release);
                // acq_rel: acquire sees each record's fields, written before its
                // release CAS; release is for the next exchange, as in the twin.
                return m_waiters.exchange(nullptr, std::memory_order_acq_rel);
            } else {
                // acq_rel: release publishes m_value to every awaiter that reads the
                // mark; acquire sees each record's fields, written before its CAS.
                return static_cast<waiter*>(m_state.exchange(done_mark(), std::memory_order_acq_rel));
            }
        }

        // Starts at one: get_return_object's result is the first owner.
        std::atomic<long> m_refs{1};
        std::atomic<bool> m_started{false};
        // nullptr: not finished, nobody waiting; done_mark(): finished; else the newest
        // waiting record (they link through m_next).
        std::atomic<void*> m_state{nullptr};
        // lost_wakeup keeps the same facts in two words.
        std::atomic<bool> m_done{false};
        std::atomic<waiter*> m_waiters{nullptr};
        int m_value = 0;
    };

    /// The awaiter of `co_await t`: lives in the awaiting coroutine's frame. The
    /// awaiting coroutine must own a copy of the task for the whole wait.
    class awaiter {
    public:
        explicit awaiter(handle_type producer) noexcept : m_producer(producer) {}

        bool await_ready() const noexcept {
            promise_type& p = m_producer.promise();
            if constexpr (Flaw == sync_flaw::lost_wakeup) {
                // acquire: pairs with complete()'s release, so m_value is ours to read.
                return p.m_done.load(std::memory_order_acquire);
            } else {
                // acquire: as above, through the state word.
                return p.m_state.load(std::memory_order_acquire) == p.done_mark();
            }
        }

        bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
            STRESSCORO_TARGETS_HOOK(await_suspend);
            m_record.m_continuation = awaiting;
            // Before the record is published: once it is, a completion on another thread
            // may resume the awaiting coroutine, which may end and free this awaiter.
            keep_pending(m_producer);
            promise_type& p = m_producer.promise();
            if constexpr (Flaw == sync_flaw::lost_wakeup) {
                // Wrong: "not finished" was read in await_ready, from another word. A
                // completion since then has taken the list this record now joins.
                // relaxed load: only a first guess of the head, which the CAS checks.
                waiter* head = p.m_waiters.load(std::memory_order_relaxed);
                do {
                    m_record.m_next = head;
                    // release: the completion's acquire exchange sees the record's fields.
                } while (!p.m_waiters.compare_exchange_weak(head, &m_record, std::memory_order_release,
                                                            std::memory_order_relaxed));
                return true;
            } else {
                // acquire: if the task has finished, m_value is ours to read at once.
                void* state = p.m_state.load(std::memory_order_acquire);
                do {
                    if (state == p.done_mark()) return false;  // finished meanwhile: go on
                    m_record.m_next = static_cast<waiter*>(state);
                    // release: the completion's acquire exchange sees the record's fields;
                    // acquire on failure: the value re-read may be the done mark.
                } while (!p.m_state.compare_exchange_weak(state, &m_record, std::memory_order_release,
                                                          std::memory_order_acquire));
                return true;  // nothing here may touch `this` any more
            }
        }

        int await_resume() const noexcept { return m_producer.promise().m_value; }

    private:
        handle_type m_producer;
        waiter m_record;
    };

    explicit async_task(handle_type h) noexcept : m_handle(h) {}
    async_task(const async_task& other) noexcept : m_handle(other.m_handle) { acquire(m_handle); }
    async_task(async_task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    async_task& operator=(const async_task& other) noexcept {
        async_task copy(other);
        swap(*this, copy);
        return *this;
    }
    async_task& operator=(async_task&& other) noexcept {
        if (this != &other) release(std::exchange(m_handle, std::exchange(other.m_handle, {})));
        return *this;
    }
    ~async_task() { release(m_handle); }

    friend void swap(async_task& a, async_task& b) noexcept { std::swap(a.m_handle, b.m_handle); }

    /// Start the producer if nobody has; otherwise do nothing.
    void resume() {
        if (!m_handle) return;
        promise_type& p = m_handle.promise();
        // relaxed: the exchange only elects the one thread that runs the body. What the
        // body reads reached this thread with its reference (a copy, a hand-off); what
        // it writes is published by complete().
        if (p.m_started.exchange(true, std::memory_order_relaxed)) return;
        acquire(m_handle);  // the running body owns the frame until final_awaiter
        m_handle.resume();
    }

    awaiter operator co_await() const noexcept { return awaiter{m_handle}; }

    std::coroutine_handle<> raw_handle() const noexcept { return m_handle; }

    /// Start every task some coroutine waits for, until nothing is pending. Call it
    /// when no other thread uses the library (the end of the program's work).
    static void drain_pending() {
        // acquire: pairs with keep_pending's release, so each node's fields are visible.
        while (pending* n = s_pending.exchange(nullptr, std::memory_order_acquire)) {
            while (n != nullptr) {
                pending* next = n->m_next;
                async_task kept(n->m_task);  // takes over the node's reference
                delete n;
                kept.resume();  // may add nodes, taken by the next round
                n = next;
            }
        }
    }

private:
    struct pending {
        handle_type m_task;  // one reference, taken by keep_pending
        pending* m_next = nullptr;
    };
    static inline std::atomic<pending*> s_pending{nullptr};

    static void keep_pending(handle_type h) {
        acquire(h);
        auto* n = new pending{h, nullptr};
        // relaxed load: only a first guess of the head, which the CAS checks.
        pending* head = s_pending.load(std::memory_order_relaxed);
        do {
            n->m_next = head;
            // release: drain_pending's acquire exchange sees the node's fields.
        } while (!s_pending.compare_exchange_weak(head, n, std::memory_order_release,
                                                  std::memory_order_relaxed));
    }

    static void acquire(handle_type h) noexcept {
        // relaxed: the new reference is made from one the caller holds, which already
        // keeps the frame alive and reached this thread in order.
        if (h) h.promise().m_refs.fetch_add(1, std::memory_order_relaxed);
    }

    /// Give up one reference to `h`; the last one destroys the frame.
    static void release(handle_type h) noexcept {
        if (!h) return;
        std::atomic<long>& refs = h.promise().m_refs;
        if constexpr (Flaw == sync_flaw::check_then_act_release) {
            // Wrong: the check and the decrement are two operations. Another owner
            // may decrement in between, and then neither of us sees the count reach 1.
            if (refs.load(std::memory_order_acquire) == 1) {
                h.destroy();
            } else {
                STRESSCORO_TARGETS_HOOK(release_checked);
                refs.fetch_sub(1, std::memory_order_acq_rel);
            }
        } else {
            // acq_rel: release our writes to the frame, and acquire every other owner's
            // when we are the last and destroy it.
            if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) h.destroy();
        }
    }

    handle_type m_handle;
};

/// A task that finishes with `value` when an owner first resumes it.
template <sync_flaw Flaw>
async_task<Flaw> async_value(int value) {
    co_return value;
}

/// A coroutine nobody owns: it starts at once and frees its own frame when it ends.
struct detached {
    struct promise_type {
        detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

/// Start a detached coroutine that waits for `task` (it keeps a copy until then).
template <sync_flaw Flaw>
detached spawn_waiter(async_task<Flaw> task) {
    static_cast<void>(co_await task);
}

/// What a when_all shares with its two children: it lives in the awaiting frame.
struct when_all_counter {
    // Two children and the awaiting coroutine's own step; the last to count down
    // resumes the awaiting coroutine.
    std::atomic<int> m_count{3};
    std::coroutine_handle<> m_parent;  // set before either child starts
    int m_results[2] = {-1, -1};
};

/// One child of a when_all: a coroutine that awaits one task and reports to the counter.
template <sync_flaw Flaw>
class when_all_child {
public:
    struct promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            promise_type& p = h.promise();
            when_all_counter& all = *p.m_counter;
            if constexpr (Flaw == sync_flaw::count_before_store) {
                // Wrong: counted first. If another child is last meanwhile, the parent
                // runs on, reads the results and destroys this frame while we still
                // read it below.
                // acq_rel: as in the twin.
                const bool last = all.m_count.fetch_sub(1, std::memory_order_acq_rel) == 1;
                STRESSCORO_TARGETS_HOOK(when_all_counted);
                all.m_results[p.m_index] = p.m_value;
                if (last) return all.m_parent;
                return std::noop_coroutine();
            } else {
                all.m_results[p.m_index] = p.m_value;
                const std::coroutine_handle<> parent = all.m_parent;
                // acq_rel: release publishes our result to whoever counts last; acquire,
                // when we are last, sees the other child's result before the parent runs.
                const bool last = all.m_count.fetch_sub(1, std::memory_order_acq_rel) == 1;
                STRESSCORO_TARGETS_HOOK(when_all_counted);
                // Nothing of this frame or of `all` is touched from here on: the parent
                // may already be running on another thread.
                if (last) return parent;
                return std::noop_coroutine();
            }
        }
        void await_resume() const noexcept {}
    };

    struct promise_type {
        when_all_child get_return_object() noexcept { return when_all_child{handle_type::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_value(int value) noexcept { m_value = value; }
        void unhandled_exception() noexcept { std::terminate(); }

        when_all_counter* m_counter = nullptr;
        int m_index = 0;
        int m_value = 0;
    };

    explicit when_all_child(handle_type h) noexcept : m_handle(h) {}
    when_all_child(when_all_child&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
    when_all_child& operator=(when_all_child&&) = delete;
    ~when_all_child() {
        if (m_handle) m_handle.destroy();
    }

    /// Run until it waits for its task, or to the end.
    void start(when_all_counter& counter, int index) {
        m_handle.promise().m_counter = &counter;
        m_handle.promise().m_index = index;
        m_handle.resume();
    }

private:
    handle_type m_handle;
};

template <sync_flaw Flaw>
when_all_child<Flaw> await_child(async_task<Flaw> task) {
    co_return co_await task;
}

/// `co_await when_all_of(a, b)` waits for both; result(i) is each one's value. It owns
/// its children, which own copies of the tasks.
template <sync_flaw Flaw>
class when_all_of {
public:
    when_all_of(const async_task<Flaw>& a, const async_task<Flaw>& b)
        : m_children{await_child<Flaw>(a), await_child<Flaw>(b)} {}
    when_all_of(const when_all_of&) = delete;
    when_all_of& operator=(const when_all_of&) = delete;

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> parent) {
        m_counter.m_parent = parent;
        m_children[0].start(m_counter, 0);
        m_children[1].start(m_counter, 1);
        // acq_rel: release, so that the child that counts last sees m_parent and our
        // writes; acquire, when we count last ourselves, sees both children's results.
        return m_counter.m_count.fetch_sub(1, std::memory_order_acq_rel) > 1;
    }
    void await_resume() const noexcept {}

    int result(int i) const noexcept { return m_counter.m_results[i]; }

private:
    when_all_counter m_counter;
    when_all_child<Flaw> m_children[2];
};

/// A task that waits for `a` and `b` (it keeps copies) and finishes with their sum plus `add`.
template <sync_flaw Flaw>
async_task<Flaw> when_all_sum(async_task<Flaw> a, async_task<Flaw> b, int add) {
    int sum = add;
    {
        when_all_of<Flaw> both(a, b);
        co_await both;
        sum += both.result(0) + both.result(1);
    }  // the children end here
    co_return sum;
}

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_ASYNC_TASK_HPP_INCLUDED
