// stresscoro: name=overflow
// stresscoro: kind=other
// stresscoro: expected=undefined-behavior
// stresscoro: sanitizers=ubsan
// stresscoro: summary=test-only: resume adds to a signed counter until it overflows
#include <stresscoro/adapter.hpp>

#include <climits>

struct counter {
    int m_value;
};

struct stresscoro_target {
    using object = counter;
    static constexpr stresscoro::factory factories[] = {{"start", 0, 0}};
    static object make(int, int) { return counter{INT_MAX - 1}; }
    static void resume(object& c) {
        volatile int step = 1;
        c.m_value = c.m_value + step;  // the second resume overflows
    }
};
