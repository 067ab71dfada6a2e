// The native schedule generator: draws legal schedules for an adapter from a seed or
// from a byte string, at native speed, in the driver's encoding.
//
// It is the second implementation of the legality model whose first is
// strategies/_internal/schedules.py (`_build`); the rules are written once in prose,
// in that module's docstring. The two are held equal by tests/test_generator.py: every
// schedule drawn here, fed back through the Python model (`rebuild`), comes out unchanged.
//
// Drawing mirrors the Python strategy: per op a name from the target's op set (a swarm
// subset of it when the target declares composition), then only the values that op
// uses, a keep-empty draw for ops that read a slot, a thread draw for make; then the
// model steers, skips or keeps the op (live-slot steering, holders, one writer thread
// per frame, sends only where the rules allow, declared preconditions, borrows).
// With two threads or more, preemptions follow the ops (Python _planned): a "one more"
// draw before each of up to three, then its op, its `after` (1..8) and its `to` as an
// index among the threads other than the op's; put in the schedule's order (sorted by
// (op, after), the first drawn kept of two at one (op, after)). A schedule with
// preemptions is written in encoding version 3, one without in version 2.
//
// A `byte_source` decodes any byte string (a libFuzzer input): a value in lo..hi takes
// as few bytes as its range needs, an exhausted source gives lo, and the schedule ends
// when the bytes do. Every byte string decodes to a legal schedule.
#ifndef STRESSCORO_GENERATOR_HPP_INCLUDED
#define STRESSCORO_GENERATOR_HPP_INCLUDED

#include <stresscoro/driver.hpp>
#include <stresscoro/detail/config.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace stresscoro {

/// Values from a byte string, FuzzedDataProvider-like but front to back.
class byte_source {
public:
    byte_source(const std::uint8_t* data, std::size_t size) noexcept : m_data(data), m_size(size) {}
    STRESSCORO_UNCHECKED int draw(int lo, int hi) noexcept {
        if (hi <= lo) return lo;
        const std::uint32_t range = static_cast<std::uint32_t>(hi - lo);
        std::uint32_t value = 0;
        for (std::uint32_t covered = 0; covered < range && m_pos < m_size; covered = (covered << 8) | 0xff) {
            value = (value << 8) | m_data[m_pos++];
        }
        return lo + static_cast<int>(value % (range + 1));
    }
    STRESSCORO_UNCHECKED bool exhausted() const noexcept { return m_pos >= m_size; }
    STRESSCORO_UNCHECKED std::size_t used() const noexcept { return m_pos; }

private:
    const std::uint8_t* m_data;
    std::size_t m_size;
    std::size_t m_pos = 0;
};

/// Values from a 64-bit seed (splitmix64); never exhausted.
class seed_source {
public:
    explicit seed_source(std::uint64_t seed) noexcept : m_state(seed) {}
    STRESSCORO_UNCHECKED std::uint64_t next() noexcept {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    STRESSCORO_UNCHECKED int draw(int lo, int hi) noexcept {
        if (hi <= lo) return lo;
        return lo + static_cast<int>(next() % (static_cast<std::uint64_t>(hi - lo) + 1));
    }
    STRESSCORO_UNCHECKED bool exhausted() const noexcept { return false; }

private:
    std::uint64_t m_state;
};

/// The most preemptions a drawn schedule has, and the latest sync point one names
/// (Python MAX_DRAWN_PREEMPTIONS and MAX_DRAWN_AFTER, stresscoro.strategies).
inline constexpr int max_drawn_preemptions = 3;
inline constexpr int max_drawn_after = 8;

/// Generation settings; the defaults are the Python strategy's.
struct generator_options {
    int max_ops = 12;
    int slots = 0;  // 0: 3, or 4 for a target with combinators (Python COMPOSITION_SLOTS)
    int threads = 1;
    bool preemptions = true;  // drawn with 2 threads or more (Python schedules(preemptions=))
};

template <adapter A>
class generator {
    using drv = driver<A>;
    static constexpr int keep_empty_one_in = 16;
    static constexpr int swarm_subsets = 63;
    // The driver's encodings (stresscoro/schedule.py ENCODING_VERSION_PLAIN and
    // ENCODING_VERSION): version 3 adds the preemption count after the op count, and the
    // (op, after, to) triples after the ops.
    static constexpr int encoding_plain = 2;
    static constexpr int encoding_preempted = 3;
    static constexpr int header_words = 6;  // the longer header; version 2 skips word 0
    static constexpr int preemption_words = 3;

    // Fields of an op, by code, in the Python vocabulary's order.
    enum field : unsigned char { f_none, f_slot, f_src, f_dst, f_a, f_b, f_src2, f_x, f_y,
                                 f_factory, f_arg, f_to, f_combinator, f_fn };
    struct op_fields { field f[5]; int n; };
    STRESSCORO_UNCHECKED static constexpr op_fields fields_of(int code) noexcept {
        switch (code) {
            case op_make: return {{f_slot, f_factory, f_arg}, 3};
            case op_copy: case op_copy_assign: case op_move: case op_move_assign:
                return {{f_src, f_dst}, 2};
            case op_swap: return {{f_a, f_b}, 2};
            case op_send: return {{f_slot, f_to}, 2};
            case op_make_from: return {{f_dst, f_combinator, f_arg, f_src, f_src2}, 5};
            case op_call: return {{f_fn, f_arg, f_x, f_y}, 4};
            case op_step: return {{}, 0};
            case op_probe: return {{f_dst, f_src}, 2};
            default: return {{f_slot}, 1};  // resume, drop, touch, await
        }
    }
    STRESSCORO_UNCHECKED static constexpr bool is_slot(field f) noexcept { return f >= f_slot && f <= f_y; }
    STRESSCORO_UNCHECKED static constexpr bool is_optional(field f) noexcept { return f == f_src2 || f == f_x || f == f_y; }
    // The fields that must name a live object (Python _READS), or none.
    STRESSCORO_UNCHECKED static constexpr bool reads(int code, field f) noexcept { return read_position(code, f) >= 0; }
    STRESSCORO_UNCHECKED static constexpr int read_position(int code, field f) noexcept {
        switch (code) {
            case op_copy: case op_move: return f == f_src ? 0 : -1;
            case op_copy_assign: case op_move_assign: return f == f_src ? 0 : f == f_dst ? 1 : -1;
            case op_swap: return f == f_a ? 0 : f == f_b ? 1 : -1;
            case op_resume: case op_drop: case op_touch: case op_await: case op_send:
                return f == f_slot ? 0 : -1;
            case op_probe: return f == f_src ? 0 : -1;
            case op_make_from: return f == f_src ? 0 : f == f_src2 ? 1 : -1;
            case op_call: return f == f_x ? 0 : f == f_y ? 1 : -1;
            default: return -1;
        }
    }
    STRESSCORO_UNCHECKED static constexpr bool has_reads(int code) noexcept {
        return code != op_make && code != op_step;
    }
    // Python _USES: uses a moved-from object may not have.
    STRESSCORO_UNCHECKED static constexpr bool uses(int code, field f) noexcept {
        switch (code) {
            case op_copy: case op_move: case op_copy_assign: case op_move_assign: return f == f_src;
            case op_swap: return true;
            case op_resume: case op_touch: case op_await: return f == f_slot;
            case op_probe: case op_make_from: return f == f_src || f == f_src2;
            case op_call: return f == f_x || f == f_y;
            default: return false;
        }
    }

    struct sig { pass in[2]; int n; int lo; int hi; };
    template <class S, std::size_t N>
    STRESSCORO_UNCHECKED static sig sig_of(const S (&list)[N], int which) noexcept {
        sig s{{list[which].in[0], list[which].in[1]}, 0, list[which].arg_min, list[which].arg_max};
        for (pass p : list[which].in) s.n += p != pass::none;
        return s;
    }
    STRESSCORO_UNCHECKED static int combinator_count() noexcept {
        if constexpr (detail::has_combinators<A>) return static_cast<int>(std::size(A::combinators));
        else return 0;
    }
    STRESSCORO_UNCHECKED static int custom_op_count() noexcept {
        if constexpr (detail::has_custom_ops<A>) return static_cast<int>(std::size(A::ops));
        else return 0;
    }
    STRESSCORO_UNCHECKED static sig signature(int code, int which) noexcept {
        if constexpr (detail::has_combinators<A>) {
            if (code == op_make_from) return sig_of(A::combinators, which);
        }
        if constexpr (detail::has_custom_ops<A>) {
            if (code == op_call) return sig_of(A::ops, which);
        }
        return {{pass::none, pass::none}, 0, 0, 0};
    }
    STRESSCORO_UNCHECKED static int factory_count() noexcept { return static_cast<int>(std::size(A::factories)); }

    // The model (Python _Model): what generation knows after each op.
    struct model {
        int n = 0;
        bool live[max_slots] = {};
        int holder[max_slots];
        int family[max_slots];
        bool moved[max_slots] = {};
        bool awaited[max_slots] = {};
        bool probe[max_slots] = {};
        unsigned borrows[max_slots] = {};  // bit s: refers to slot s
        std::vector<int> writer;  // family -> thread, -1 none yet
        int families = 0;

        STRESSCORO_UNCHECKED explicit model(int slots) : n(slots) {
            for (int s = 0; s < max_slots; ++s) holder[s] = family[s] = -1;
        }
        STRESSCORO_UNCHECKED bool occupied(int s) const noexcept { return live[s] || probe[s]; }
        STRESSCORO_UNCHECKED bool any_live() const noexcept {
            for (int s = 0; s < n; ++s) if (live[s]) return true;
            return false;
        }
        STRESSCORO_UNCHECKED bool borrowed(int slot) const noexcept {
            for (int s = 0; s < n; ++s) if (occupied(s) && (borrows[s] >> slot & 1)) return true;
            return false;
        }
        STRESSCORO_UNCHECKED void fresh(int s, int thread, int fam = -1) {
            live[s] = true; holder[s] = thread; probe[s] = false;
            moved[s] = awaited[s] = false; borrows[s] = 0;
            if (fam < 0) { fam = families++; writer.push_back(-1); }
            family[s] = fam;
        }
        STRESSCORO_UNCHECKED void empty(int s, int thread) noexcept {
            live[s] = probe[s] = moved[s] = awaited[s] = false;
            family[s] = -1; holder[s] = thread; borrows[s] = 0;
        }
        STRESSCORO_UNCHECKED void moved_from(int s) noexcept { family[s] = -1; moved[s] = true; awaited[s] = false; }
        STRESSCORO_UNCHECKED bool shared(int slot) const noexcept {
            const int fam = family[slot];
            if (fam < 0) return false;
            for (int s = 0; s < n; ++s) if (s != slot && family[s] == fam && live[s]) return true;
            return false;
        }
        STRESSCORO_UNCHECKED bool may_write(int slot, int thread) const noexcept {
            const int fam = family[slot];
            return fam < 0 || writer[fam] < 0 || writer[fam] == thread;
        }
        STRESSCORO_UNCHECKED void wrote(int slot, int thread) noexcept {
            if (live[slot] && family[slot] >= 0 && writer[family[slot]] < 0) writer[family[slot]] = thread;
        }
    };

    // extra: the factory and argument draws for inputs a combinator makes itself.
    struct op { int code; int thread; int a[5]; int n; int extra[2]; bool has_extra; };

    STRESSCORO_UNCHECKED static int inputs(const op& o, int* out) noexcept {
        int k = 0;
        const int from = o.code == op_make_from ? 3 : o.code == op_call ? 2 : o.n;
        for (int i = from; i < o.n; ++i) if (o.a[i] >= 0) out[k++] = o.a[i];
        return k;
    }

public:
    generator(generator_options options = {}) : m_opt(options) {
        constexpr rules r = detail::rules_of<A>();
        if (!r.moves_across_threads) m_opt.threads = 1;
        if (m_opt.slots == 0) m_opt.slots = combinator_count() > 0 ? 4 : 3;
        if (m_opt.slots > max_slots) m_opt.slots = max_slots;
        if (m_opt.slots < 1) m_opt.slots = 1;
        if (m_opt.threads > max_threads) m_opt.threads = max_threads;
        if (m_opt.threads < 1) m_opt.threads = 1;
        if (m_opt.max_ops > max_ops) m_opt.max_ops = max_ops;
        if (m_opt.max_ops < 1) m_opt.max_ops = 1;
        const int caps = drv::capabilities();
        // Python OP_ORDER; `await` is replayed, never generated.
        static constexpr int order[] = {op_make, op_copy, op_move, op_resume, op_drop,
                                        op_copy_assign, op_move_assign, op_swap, op_touch,
                                        op_make_from, op_probe, op_call, op_step, op_send};
        for (int code : order) {
            if (!(caps & (1 << code))) continue;
            if (code == op_send && m_opt.threads < 2) continue;
            if (code == op_make_from && combinator_count() == 0) continue;
            if (code == op_call && custom_op_count() == 0) continue;
            m_names.push_back(code);
        }
        for (int code : m_names) if (code == op_send) { m_names.push_back(op_send); break; }
        // Swarm testing and spread draws: adapters with combinators or custom ops.
        m_swarm = combinator_count() > 0 || custom_op_count() > 0;
        m_widest = 0;
        for (const factory& f : A::factories) m_widest = std::max(m_widest, f.arg_max - f.arg_min);
    }

    const generator_options& options() const noexcept { return m_opt; }

    /// Draws one schedule; writes it in the driver's encoding to `out` (cleared first):
    /// version 3 when it has preemptions, else version 2.
    template <class Source>
    STRESSCORO_UNCHECKED void draw(Source& src, std::vector<int>& out) {
        const int slots = m_opt.slots, threads = m_opt.threads;
        // Swarm testing (Python _swarm_ops): subset 0 is every op.
        const int* names = m_names.data();
        int n_names = static_cast<int>(m_names.size());
        int subset[op_code_count * 4];
        if (m_swarm) {
            const int which = src.draw(0, swarm_subsets);
            if (which != 0) {
                seed_source pick(static_cast<std::uint64_t>(which));
                int k = 0;
                for (int code : m_names) {
                    if (code == op_make || pick.draw(0, 99) < 40) subset[k++] = code;
                }
                if (k > 1) { names = subset; n_names = k; }
            }
            // Ops that relate, drive and break objects count twice (Python _swarm_ops).
            if (names != subset) {
                for (int i = 0; i < n_names; ++i) subset[i] = names[i];
                names = subset;
            }
            const int base = n_names;
            for (int i = 0; i < base; ++i) {
                const int c = subset[i];
                if (c == op_make_from || c == op_probe || c == op_call || c == op_step ||
                    c == op_resume || c == op_drop) {
                    subset[n_names++] = c;
                }
            }
        }
        // A seed draws the length; a byte string ends where its bytes do.
        const int length = std::is_same_v<Source, seed_source> ? src.draw(1, m_opt.max_ops)
                                                               : m_opt.max_ops;
        model m(slots);
        sink to{&m_scratch, m_scratch.data(), m_scratch.size()};
        int count = 0;
        for (int drawn = 0; drawn < length && (drawn == 0 || !src.exhausted()); ++drawn) {
            op o{};
            int keep = 0, thread = 0;
            draw_raw(src, names, n_names, o, keep, thread);
            if (build_op(m, o, keep, thread, to, count)) emit(to, count, o);
        }
        const int n_pre = threads >= 2 && m_opt.preemptions && count > 0
                              ? draw_preemptions(src, to, count) : 0;
        const std::size_t end = header_words + static_cast<std::size_t>(op_words) * count +
                                static_cast<std::size_t>(preemption_words) * n_pre;
        // Version 2 has no preemption count: its header starts a word later, so that it
        // too ends right before the ops.
        int* head = to.data + (n_pre ? 0 : 1);
        const int version = n_pre ? encoding_preempted : encoding_plain;
        const int header[header_words] = {schedule_magic, version, slots, threads, count, n_pre};
        for (int i = 0; i < (n_pre ? header_words : header_words - 1); ++i) head[i] = header[i];
        out.assign(head, to.data + end);
    }

private:
    // The schedule being written: m_scratch (kept between draws, only ever grown), and
    // its storage as a plain array (the unchecked code calls no std::vector member per
    // op; see STRESSCORO_UNCHECKED). draw() copies the result out in one go.
    struct sink {
        std::vector<int>* out;
        int* data;
        std::size_t size;
    };
    static void grow(sink& to, std::size_t at_least) {
        if (to.out->size() < at_least) to.out->resize(std::max(at_least, 2 * to.out->size()));
        to.data = to.out->data();
        to.size = to.out->size();
    }

    STRESSCORO_UNCHECKED static void emit(sink& to, int& count, const op& o) {
        const std::size_t at = header_words + static_cast<std::size_t>(op_words) * count;
        if (at + op_words > to.size) grow(to, at + op_words);
        int* w = to.data + at;
        w[0] = o.code;
        w[1] = o.thread;
        for (int i = 0; i < 5; ++i) w[2 + i] = i < o.n ? o.a[i] : 0;
        ++count;
    }

    /// Python _planned and _preemption_draws: up to max_drawn_preemptions preemptions
    /// over the `count` ops written, each after a "one more" draw, put in the schedule's
    /// order (Python schedule.ordered_preemptions) and written after the ops. Returns
    /// how many were kept.
    template <class Source>
    STRESSCORO_UNCHECKED int draw_preemptions(Source& src, sink& to, int count) {
        const int threads = m_opt.threads;
        int drawn[max_drawn_preemptions][3];
        int n = 0;
        while (n < max_drawn_preemptions && src.draw(0, 1) == 1) {
            const int which = count > 1 ? src.draw(0, count - 1) : 0;
            const int after = src.draw(1, max_drawn_after);
            const int other = threads > 2 ? src.draw(0, threads - 2) : 0;
            const int thread = to.data[header_words + op_words * which + 1];
            drawn[n][0] = which;
            drawn[n][1] = after;
            drawn[n][2] = other + (other >= thread ? 1 : 0);
            ++n;
        }
        // Stable insertion sort by (op, after): of two at one (op, after), the first
        // drawn comes first and is the one kept.
        for (int i = 1; i < n; ++i) {
            for (int j = i; j > 0 && sorts_after(drawn[j - 1], drawn[j]); --j) {
                for (int w = 0; w < 3; ++w) std::swap(drawn[j - 1][w], drawn[j][w]);
            }
        }
        const std::size_t at = header_words + static_cast<std::size_t>(op_words) * count;
        if (at + preemption_words * max_drawn_preemptions > to.size) {
            grow(to, at + preemption_words * max_drawn_preemptions);
        }
        int kept = 0;
        for (int i = 0; i < n; ++i) {
            if (kept && drawn[i][0] == to.data[at + 3 * (kept - 1)] &&
                drawn[i][1] == to.data[at + 3 * (kept - 1) + 1]) {
                continue;
            }
            for (int w = 0; w < 3; ++w) to.data[at + 3 * kept + w] = drawn[i][w];
            ++kept;
        }
        return kept;
    }

    /// Preemption x comes after y in the schedule's order: by op, then by `after`.
    STRESSCORO_UNCHECKED static bool sorts_after(const int* x, const int* y) noexcept {
        return x[0] > y[0] || (x[0] == y[0] && x[1] > y[1]);
    }

    template <class Source>
    STRESSCORO_UNCHECKED void draw_raw(Source& src, const int* names, int n_names, op& o, int& keep, int& thread) {
        const int slots = m_opt.slots, threads = m_opt.threads;
        o.code = names[src.draw(0, n_names - 1)];
        const op_fields fs = fields_of(o.code);
        o.n = fs.n;
        sig s{};
        bool has_sig = false;
        for (int i = 0; i < fs.n; ++i) {
            const field f = fs.f[i];
            int v;
            if (f == f_factory) {
                v = src.draw(0, factory_count() - 1);
            } else if (f == f_combinator || f == f_fn) {
                v = src.draw(0, (f == f_combinator ? combinator_count() : custom_op_count()) - 1);
                s = signature(o.code, v);
                has_sig = true;
            } else if (f == f_arg && has_sig) {
                v = s.hi > s.lo ? src.draw(0, s.hi - s.lo) : 0;
            } else if (f == f_arg) {
                v = src.draw(0, m_widest);
            } else if ((f == f_src || f == f_src2 || f == f_x || f == f_y) && has_sig) {
                const int position = (f == f_src || f == f_x) ? 0 : 1;
                v = position < s.n ? src.draw(0, slots - 1) : -1;
            } else if (f == f_to) {
                v = src.draw(1, threads - 1);
            } else {
                v = src.draw(0, slots - 1);
            }
            o.a[i] = v;
        }
        if (has_sig && s.n > 0) {
            o.extra[0] = src.draw(0, factory_count() - 1);
            o.extra[1] = src.draw(0, m_widest);
            o.has_extra = true;
        }
        keep = has_reads(o.code) ? src.draw(0, keep_empty_one_in - 1) : 0;
        thread = threads > 1 && o.code == op_make ? src.draw(0, threads - 1) : 0;
    }

    // Python _steer: the drawn slot if in the mask (or kept empty on purpose), else the
    // next one in it; with `spread` (composition targets), the draw picks among the
    // mask's slots evenly.
    STRESSCORO_UNCHECKED static int steer(int slot, const bool* mask, int n, bool keep_empty, bool spread) noexcept {
        int chosen[max_slots];
        int k = 0;
        for (int s = 0; s < n; ++s) if (mask[s]) chosen[k++] = s;
        if (keep_empty || k == 0) return slot;
        if (spread) return chosen[slot % k];
        if (mask[slot]) return slot;
        for (int s = slot; s < slot + n; ++s) if (mask[s % n]) return s % n;
        return slot;
    }

    // Python _input_ok: `slot` may be an input taken by `mode`.
    STRESSCORO_UNCHECKED static bool input_ok(const model& m, int slot, pass mode, int code, const rules& r) noexcept {
        if (!m.live[slot]) return false;
        if (m.moved[slot] && !r.use_after_move) return false;
        if (code == op_make_from && mode != pass::copy && m.awaited[slot] && !r.await_twice) {
            return false;
        }
        return (mode != pass::move && mode != pass::consume) || !m.borrowed(slot);
    }
    // Python _taken: a destination would destroy something worth keeping (not empty,
    // not only a moved-from husk).
    STRESSCORO_UNCHECKED static bool taken_slot(const model& m, int s) noexcept { return m.occupied(s) && !m.moved[s]; }
    STRESSCORO_UNCHECKED static int free_slot(int slot, const model& m) noexcept {
        for (int s = slot; s < slot + m.n; ++s) if (!taken_slot(m, s % m.n)) return s % m.n;
        return slot;
    }

    /// Python _build for one raw op: false when the op is left out.
    STRESSCORO_UNCHECKED bool build_op(model& m, op& o, int keep, int drawn_thread, sink& out, int& count) {
        const int slots = m_opt.slots, threads = m_opt.threads;
        constexpr rules r = detail::rules_of<A>();
        const bool keep_empty = keep == keep_empty_one_in - 1;
        sig s = signature(o.code, o.code == op_make_from ? o.a[1] : o.code == op_call ? o.a[0] : 0);
        bool has_sig = o.code == op_make_from || o.code == op_call;
        int n_inputs = has_sig ? s.n : 0;
        if (has_reads(o.code) && !keep_empty && !m.any_live() && !has_sig) {
            // Nothing to read yet: make something instead of wasting the op.
            o = op{op_make, 0, {o.a[0], 0, 0, 0, 0}, 3, {0, 0}, false};
            s = sig{};
            has_sig = false;
            n_inputs = 0;
        }
        const op_fields fs = fields_of(o.code);
        bool occ[max_slots], usable[max_slots];
        bool any_usable = false;
        for (int i = 0; i < slots; ++i) {
            occ[i] = o.code == op_drop ? m.occupied(i) : m.live[i];
            usable[i] = m.live[i] && (r.use_after_move || !m.moved[i]);
            any_usable |= usable[i];
        }
        for (int i = 0; i < fs.n; ++i) {
            const field f = fs.f[i];
            int& v = o.a[i];
            if (f == f_arg) {
                int lo, hi;
                if (o.code == op_make) {
                    lo = A::factories[o.a[i - 1]].arg_min;
                    hi = A::factories[o.a[i - 1]].arg_max;
                } else {
                    lo = s.lo;
                    hi = s.hi;
                }
                v = lo + std::min(v, hi - lo);
            } else if (reads(o.code, f)) {
                if (has_sig && read_position(o.code, f) >= n_inputs) {
                    v = -1;
                } else {
                    const bool* mask = uses(o.code, f) && any_usable ? usable : occ;
                    v = steer(v, mask, slots, keep_empty, m_swarm);
                }
            } else if (f == f_dst && (o.code == op_make_from || o.code == op_probe) && m_swarm) {
                v = free_slot(v, m);
            }
        }
        if (o.code == op_make_from && (o.a[0] == o.a[3] || o.a[0] == o.a[4])) {
            // The destination is one of the inputs: the first slot that is not.
            int other = -1;
            for (int t = 0; t < slots && other < 0; ++t) if (t != o.a[3] && t != o.a[4]) other = t;
            if (other < 0) return false;
            o.a[0] = other;
        }
        if (has_sig && !keep_empty && n_inputs) {
            if (!make_inputs(m, o, s, r, drawn_thread, out, count)) return false;
        }
        if (o.code == op_probe && o.a[0] == o.a[1]) {
            o.a[0] = (o.a[1] + 1) % slots;
            if (o.a[0] == o.a[1]) return false;
        }
        if (breaks_precondition(m, o, s, r)) return false;
        // thread_for
        int holder = -1;
        for (int i = 0; i < fs.n; ++i) {
            if (!is_slot(fs.f[i]) || (is_optional(fs.f[i]) && o.a[i] < 0)) continue;
            const int h = m.holder[o.a[i]];
            if (h < 0) continue;
            if (holder >= 0 && h != holder) return false;
            holder = h;
        }
        const int thread = holder >= 0 ? holder : drawn_thread;
        if (o.code == op_send) {
            if (!r.copies_dropped_across_threads && m.shared(o.a[0])) return false;
            o.a[1] = (thread + o.a[1]) % threads;
        }
        if (!r.resume_from_any_thread) {
            int written[2];
            const int k = writes(o, s, written);
            for (int i = 0; i < k; ++i) if (!m.may_write(written[i], thread)) return false;
            for (int i = 0; i < k; ++i) m.wrote(written[i], thread);
        }
        o.thread = thread;
        apply(m, o, s);
        return true;
    }

    /// Python _build: an input that cannot be used (none live, moved-from, the other
    /// input again...) is made fresh, in a free slot, just before the op. False when
    /// the op is left out (the makes already emitted stay).
    STRESSCORO_UNCHECKED bool make_inputs(model& m, op& o, const sig& s, const rules& r, int drawn_thread,
                                          sink& out, int& count) {
        const int slots = m_opt.slots;
        const int first = o.code == op_make_from ? 3 : 2;
        bool taken[max_slots] = {};
        if (o.code == op_make_from) taken[o.a[0]] = true;
        bool kept[2] = {false, false};
        for (int i = 0; i < s.n; ++i) {
            const int v = o.a[first + i];
            bool dup = false;
            for (int j = 0; j < i; ++j) dup |= o.a[first + j] == v;
            kept[i] = !taken[v] && input_ok(m, v, s.in[i], o.code, r) && !dup;
        }
        int holder = -1;
        for (int t = 0; t < slots; ++t) {
            bool in = taken[t];
            for (int i = 0; i < s.n; ++i) in |= kept[i] && o.a[first + i] == t;
            if (!in || m.holder[t] < 0) continue;
            if (holder >= 0 && m.holder[t] != holder) return false;
            holder = m.holder[t];
        }
        const int base = holder >= 0 ? holder : drawn_thread;
        int fresh[2];
        int n_fresh = 0;
        bool complete = true;
        for (int i = 0; i < s.n; ++i) {
            if (kept[i]) {
                taken[o.a[first + i]] = true;
                continue;
            }
            int free = -1;
            for (int t = 0; t < slots && free < 0; ++t) {
                if (!m.occupied(t) && !taken[t] && (m.holder[t] < 0 || m.holder[t] == base)) free = t;
            }
            if (free < 0) {
                complete = false;
                break;
            }
            fresh[n_fresh++] = free;
            taken[free] = true;
            o.a[first + i] = free;
        }
        if (complete) {
            const int f_in = o.has_extra ? o.extra[0] : 0, a_in = o.has_extra ? o.extra[1] : 0;
            const int lo = A::factories[f_in].arg_min, hi = A::factories[f_in].arg_max;
            for (int k = 0; k < n_fresh; ++k) {
                op made{op_make, base, {fresh[k], f_in, lo + std::min(a_in, hi - lo), 0, 0}, 3, {}, false};
                apply(m, made, sig{});
                emit(out, count, made);
            }
        }
        int n_taken = 0;
        for (int t = 0; t < slots; ++t) n_taken += taken[t];
        return n_taken >= s.n + (o.code == op_make_from ? 1 : 0);
    }

    STRESSCORO_UNCHECKED static int writes(const op& o, const sig& s, int* out) noexcept {
        if (o.code == op_resume || o.code == op_touch || o.code == op_await) { out[0] = o.a[0]; return 1; }
        if (o.code == op_probe) { out[0] = o.a[1]; return 1; }
        if (o.code != op_make_from && o.code != op_call) return 0;
        int ins[2];
        const int n = inputs(o, ins);
        int k = 0;
        for (int i = 0; i < n && i < s.n; ++i) if (s.in[i] != pass::copy) out[k++] = ins[i];
        return k;
    }

    STRESSCORO_UNCHECKED static int disturbed(const op& o, const sig& s, int* out) noexcept {
        switch (o.code) {
            case op_drop: case op_make: case op_send: case op_probe: out[0] = o.a[0]; return 1;
            case op_copy: case op_copy_assign: out[0] = o.a[1]; return 1;
            case op_move: case op_move_assign: case op_swap: out[0] = o.a[0]; out[1] = o.a[1]; return 2;
            case op_make_from: case op_call: {
                int ins[2];
                const int n = inputs(o, ins);
                int k = 0;
                for (int i = 0; i < n && i < s.n; ++i) {
                    if (s.in[i] == pass::move || s.in[i] == pass::consume) out[k++] = ins[i];
                }
                if (o.code == op_make_from) out[k++] = o.a[0];
                return k;
            }
            default: return 0;
        }
    }

    STRESSCORO_UNCHECKED static bool breaks_precondition(const model& m, const op& o, const sig& s, const rules& r) {
        int d[3];
        const int k = disturbed(o, s, d);
        for (int i = 0; i < k; ++i) if (m.borrowed(d[i])) return true;
        if (o.code == op_send && m.borrows[o.a[0]]) return true;
        if (!r.use_after_move) {
            const op_fields fs = fields_of(o.code);
            for (int i = 0; i < fs.n; ++i) {
                const int v = o.a[i];
                if (uses(o.code, fs.f[i]) && v >= 0 && m.live[v] && m.moved[v]) return true;
            }
        }
        if ((o.code == op_copy_assign && !r.self_copy_assign) ||
            (o.code == op_move_assign && !r.self_move_assign) || (o.code == op_swap && !r.self_swap)) {
            if (o.a[0] == o.a[1]) return true;
        }
        if (!r.await_twice) {
            if (o.code == op_await || o.code == op_probe) {
                const int src = o.code == op_await ? o.a[0] : o.a[1];
                if (m.live[src] && m.awaited[src]) return true;
            }
            if (o.code == op_make_from) {
                int ins[2];
                const int n = inputs(o, ins);
                bool any_copy = false;
                for (int i = 0; i < s.n; ++i) any_copy |= s.in[i] == pass::copy;
                for (int i = 0; i < n && i < s.n; ++i) {
                    if (s.in[i] != pass::copy && m.awaited[ins[i]]) return true;
                }
                if (n == 2 && ins[0] == ins[1] && !any_copy) return true;
            }
        }
        return false;
    }

    STRESSCORO_UNCHECKED static void apply(model& m, const op& o, const sig& s) {
        const int* a = o.a;
        const int t = o.thread;
        switch (o.code) {
            case op_make: m.fresh(a[0], t); break;
            case op_copy: case op_move: {
                const int src = a[0], dst = a[1];
                if (m.live[src] && src != dst) {
                    const bool moved = m.moved[src], awaited = m.awaited[src];
                    const unsigned borrows = m.borrows[src];
                    m.fresh(dst, t, m.family[src]);
                    m.moved[dst] = moved;
                    m.borrows[dst] = borrows;
                    if (o.code == op_move) {
                        m.awaited[dst] = awaited;
                        m.moved_from(src);
                        m.borrows[src] = 0;
                    }
                }
                break;
            }
            case op_copy_assign: case op_move_assign: {
                const int src = a[0], dst = a[1];
                if (m.live[src] && m.live[dst]) {
                    m.family[dst] = m.family[src];
                    m.moved[dst] = m.moved[src];
                    m.awaited[dst] = o.code == op_move_assign ? m.awaited[src] : false;
                    m.borrows[dst] = m.borrows[src];
                    if (o.code == op_move_assign) {
                        m.moved_from(src);
                        m.borrows[src] = 0;
                    }
                }
                break;
            }
            case op_swap: {
                const int x = a[0], y = a[1];
                if (m.live[x] && m.live[y]) {
                    std::swap(m.family[x], m.family[y]);
                    std::swap(m.moved[x], m.moved[y]);
                    std::swap(m.awaited[x], m.awaited[y]);
                    std::swap(m.borrows[x], m.borrows[y]);
                }
                break;
            }
            case op_drop: m.empty(a[0], t); break;
            case op_send: if (m.occupied(a[0])) m.holder[a[0]] = a[1]; break;
            case op_await: case op_probe: {
                const int src = o.code == op_await ? a[0] : a[1];
                if (m.live[src]) {
                    m.awaited[src] = true;
                    if (o.code == op_probe) {
                        m.empty(a[0], t);
                        m.probe[a[0]] = true;
                        m.borrows[a[0]] = 1u << src;
                    }
                }
                break;
            }
            case op_make_from: case op_call: {
                int ins[2];
                const int n = inputs(o, ins);
                for (int i = 0; i < n; ++i) if (!m.live[ins[i]]) return;
                unsigned refs = 0;
                for (int i = 0; i < n && i < s.n; ++i) {
                    if (s.in[i] == pass::move) m.moved_from(ins[i]);
                    else if (s.in[i] == pass::consume) m.empty(ins[i], t);
                    else if (s.in[i] == pass::ref) { m.awaited[ins[i]] = true; refs |= 1u << ins[i]; }
                }
                if (o.code == op_make_from) {
                    m.fresh(a[0], t);
                    m.borrows[a[0]] = refs;
                }
                break;
            }
            default: break;
        }
    }

    generator_options m_opt;
    std::vector<int> m_scratch =
        std::vector<int>(header_words + op_words * 96 + preemption_words * max_drawn_preemptions);
    std::vector<int> m_names;
    bool m_swarm = false;
    int m_widest = 0;
};

}  // namespace stresscoro

#endif  // STRESSCORO_GENERATOR_HPP_INCLUDED
