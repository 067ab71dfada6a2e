// stresscoro: name=handoff
// stresscoro: kind=other
// stresscoro: expected=clean
// stresscoro: sanitizers=tsan
// stresscoro: summary=test-only: a plain int published through a flag, relaxed or release/acquire
//
// Proves that the driver's turn-taking hides nothing from ThreadSanitizer: `touch`
// writes the int and raises the flag, `resume` reads the int once it sees the flag.
// With a relaxed flag that is a race TSan must report; with release/acquire it is not.
#include <stresscoro/adapter.hpp>

#include <atomic>
#include <memory>

namespace handoff {
// Each field in its own 8 bytes: TSan keeps four past accesses per 8-byte cell and
// evicts one at random when a fifth arrives, so a value sharing its cell with a field
// both threads read could lose the racy write and make the test flaky.
struct board {
    explicit board(bool ordered) noexcept : m_ordered(ordered) {}
    alignas(8) const bool m_ordered;
    alignas(8) int m_value = 0;
    alignas(8) std::atomic<int> m_flag{0};
};
inline volatile int g_sink = 0;
}  // namespace handoff

struct stresscoro_target {
    using object = std::shared_ptr<handoff::board>;
    static constexpr stresscoro::factory factories[] = {{"relaxed", 0, 0}, {"release_acquire", 0, 0}};
    static object make(int f, int) { return std::make_shared<handoff::board>(f == 1); }
    static void touch(object& b) {
        b->m_value = 42;
        b->m_flag.store(1, b->m_ordered ? std::memory_order_release : std::memory_order_relaxed);
    }
    static void resume(object& b) {
        if (b->m_flag.load(b->m_ordered ? std::memory_order_acquire : std::memory_order_relaxed)) {
            handoff::g_sink = b->m_value;
        }
    }
};
