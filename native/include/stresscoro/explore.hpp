// The native explorer: a program built from one adapter (stresscoro/explore.py builds
// it as `#include "adapter.cpp"` then this header) that draws schedules with the
// native generator and runs them in process with the driver.
//
//   describe                     the adapter's description (driver::describe JSON)
//   gen SEED COUNT               COUNT schedules drawn from seeds SEED, SEED+1, ...
//   gen-bytes SEED COUNT         COUNT schedules decoded from random byte strings
//   decode FILE                  the schedule a byte string (a libFuzzer input) decodes to
//   explore SEED COUNT SHM       draw and run COUNT schedules from seeds SEED, SEED+1, ...
//   limit SEED COUNT             the driver alone: COUNT runs of 1,000 pre-drawn schedules
//   run FILE...                  run the schedules in FILEs (the driver's int encoding, as
//                                `gen` prints), in order, in this process, as `explore`
//                                runs schedules; exit 3 at the first the driver refuses
//   interleave FILE RUNS         the schedule in FILE once (counting its sync points), then
//                                RUNS interleavings of it as `explore` draws them (seeds
//                                1..RUNS); prints `points=K threads=N runs=RUNS found=F
//                                first=I`: how many runs showed a finding the driver logs
//                                itself, and the first (0: none)
//
// Options after the mode: --max-ops N --slots N --threads N, and for `explore` how each
// drawn schedule of two or more threads is interleaved inside its ops (preemptions at
// the target's sync points, stresscoro/preempt.hpp), after a first run that counts them:
//   --interleave pct|random|exhaustive|none   (default pct)
//   --depth D          PCT: D-1 preemptions a run (default 2)
//   --interleavings R  PCT and random: runs a schedule gets (default 1)
//   --bound B          exhaustive: at most B preemptions (1 or 2, default 2), every
//                      choice of them when there are at most 256, else PCT
// Schedules are printed one a line as the driver's int encoding.
//
// `explore` keeps the schedule in flight in the shared file SHM (int64 words): word 0
// the magic, word 1 the seed in flight, word 2 the schedules finished, word 3 the
// length of the encoded schedule, then the encoded schedule, then the driver's shared
// area. A crash leaves the exact schedule there for the parent; a finding the driver
// reports without crashing (a leak, a broken invariant) is checked by the parent the
// same way: the run stops, word 4 says why (1 = the driver's log has findings). Word 5
// counts the runs (a schedule runs once more per interleaving tried).
#ifndef STRESSCORO_EXPLORE_HPP_INCLUDED
#define STRESSCORO_EXPLORE_HPP_INCLUDED

#include <stresscoro/generator.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace stresscoro::explore {

inline constexpr long long area_magic = 0x53435850;  // "SCXP"
enum area_word : int { aw_magic = 0, aw_seed = 1, aw_done = 2, aw_length = 3, aw_stop = 4,
                       aw_runs = 5, aw_header = 8 };
inline constexpr int area_schedule_words = 6 + op_words * max_ops + preempt_words * max_preemptions;
inline constexpr int driver_words = 1 << 16;
inline constexpr std::size_t area_bytes =
    sizeof(long long) * (aw_header + area_schedule_words + driver_words);

inline void print_schedule(const std::vector<int>& s) {
    std::string line;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) line += ' ';
        line += std::to_string(s[i]);
    }
    line += '\n';
    std::fputs(line.c_str(), stdout);
}

/// True when the driver's event log holds something the parent classifies as a
/// finding without a crash: a leak, a lost continuation, an adapter exception, a
/// double free the driver saw, a resume of a freed frame, a probe destroyed or resumed
/// twice (stresscoro/oracle.py, _invariants). The invariants that need the model of
/// the schedule (the owners of a frame, its use count) are not checked here: batches
/// do not log frame states (driver::log_frame_states).
STRESSCORO_UNCHECKED inline bool log_has_finding(const long long* shared) {
    const long long n = shared[hw_events];
    for (long long e = 0; e < n; ++e) {
        const long long* ev = shared + hw_words + e * event_words;
        const long long kind = ev[0];
        if (kind == ev_leak || kind == ev_lost || kind == ev_double_free || kind == ev_exception) {
            return true;
        }
        // ev_resume: op, thread, slot, frame, state (2: freed)
        if (kind == ev_resume && ev[5] == 2) return true;
        // ev_probe: op, thread, id, resumes, destroys, first resume
        if (kind == ev_probe && (ev[4] > 1 || ev[5] > 0)) return true;
    }
    return false;
}

/// The schedule in flight, where the parent finds it after a crash.
STRESSCORO_UNCHECKED inline void publish(volatile long long* area, long long* words,
                                         long long seed, const int* s, std::size_t n) {
    area[aw_seed] = seed;
    area[aw_length] = static_cast<long long>(n);
    for (std::size_t w = 0; w < n; ++w) words[w] = s[w];
}

enum class interleave_mode { none, pct, random, exhaustive };

struct interleave_options {
    interleave_mode mode = interleave_mode::pct;
    int depth = 2;
    int runs = 1;
    int bound = 2;
};

/// Preemptions a schedule file holds at most (stresscoro/schedule.py MAX_PREEMPTIONS).
inline constexpr int saved_preemptions = max_preemptions;

/// The sync points op i passed in the last run, as far as a schedule file can name them.
template <class A>
int sync_points_of(int i) {
    const int k = driver<A>::item_points(i);
    return k < max_after ? k : max_after;
}
inline constexpr int exhaustive_limit = 256;

/// The interleavings to try for one schedule, from the sync points each op passed in
/// its first run: tables of (op, after, to) triples, each sorted, none longer than
/// saved_preemptions.
class interleavings {
public:
    /// `owners[i]` the thread of op i, `points[i]` the sync points it passed.
    STRESSCORO_UNCHECKED void plan(const interleave_options& opt, unsigned long long seed,
                                   const std::vector<int>& owners, const std::vector<int>& points,
                                   int threads) {
        m_tables.clear();
        long long total = 0;
        for (int k : points) total += k;
        if (threads < 2 || total == 0 || opt.mode == interleave_mode::none) return;
        if (opt.mode == interleave_mode::exhaustive && exhaustive(owners, points, threads, opt.bound)) return;
        for (int r = 0; r < opt.runs; ++r) {
            seed_source rng(seed * 0x9e3779b97f4a7c15ULL + static_cast<unsigned long long>(r) + 1);
            std::vector<int> t;
            if (opt.mode == interleave_mode::random) {
                // A random walk: after each sync point, a switch with probability 1/4 to
                // a thread drawn uniformly from the others.
                for (std::size_t i = 0; i < points.size(); ++i) {
                    for (int p = 1; p <= points[i] && t.size() < 3 * saved_preemptions; ++p) {
                        if (rng.draw(0, 3) != 0) continue;
                        int to = rng.draw(0, threads - 2);
                        if (to >= owners[i]) ++to;
                        add(t, static_cast<int>(i), p, to);
                    }
                }
            } else {
                // PCT (Burckhardt et al. 2010) over the schedule's own order: random
                // thread priorities and depth-1 change points drawn uniformly among the
                // sync points; at one, the CPU goes to the highest-priority other thread.
                int prio[max_threads];
                for (int k = 0; k < threads; ++k) prio[k] = k;
                for (int k = threads - 1; k > 0; --k) std::swap(prio[k], prio[rng.draw(0, k)]);
                for (int c = 0; c < opt.depth - 1; ++c) {
                    long long g = 1 + static_cast<long long>(rng.next() % static_cast<unsigned long long>(total));
                    std::size_t i = 0;
                    while (g > points[i]) g -= points[i++];
                    int to = -1;
                    for (int k = 0; k < threads && to < 0; ++k) {
                        if (prio[k] != owners[i]) to = prio[k];
                    }
                    add(t, static_cast<int>(i), static_cast<int>(g), to);
                }
            }
            m_tables.push_back(std::move(t));
        }
    }

    std::size_t size() const noexcept { return m_tables.size(); }

    /// `s` (an encoded schedule, version 2 or 3) with table `k` as its preemptions.
    STRESSCORO_UNCHECKED void apply(const std::vector<int>& s, std::size_t k, std::vector<int>& out) const {
        const int header = s[1] == 2 ? 5 : 6;
        const int n_ops = s[4];
        const std::vector<int>& t = m_tables[k];
        out.assign({s[0], 3, s[2], s[3], n_ops, static_cast<int>(t.size() / 3)});
        out.insert(out.end(), s.begin() + header, s.begin() + header + op_words * n_ops);
        out.insert(out.end(), t.begin(), t.end());
    }

private:
    /// Insert (op, after, to) in order; a second one at the same point is dropped, and
    /// so is anything past saved_preemptions.
    STRESSCORO_UNCHECKED static void add(std::vector<int>& t, int op, int after, int to) {
        std::size_t at = 0;
        while (at < t.size() && (t[at] < op || (t[at] == op && t[at + 1] < after))) at += 3;
        if (at < t.size() && t[at] == op && t[at + 1] == after) return;
        if (t.size() >= 3 * saved_preemptions) return;
        t.insert(t.begin() + static_cast<long>(at), {op, after, to});
    }

    /// Every choice of up to `bound` preemptions, if there are at most exhaustive_limit.
    STRESSCORO_UNCHECKED bool exhaustive(const std::vector<int>& owners, const std::vector<int>& points,
                                         int threads, int bound) {
        std::vector<int> singles;  // op, after, to
        for (std::size_t i = 0; i < points.size(); ++i) {
            for (int p = 1; p <= points[i]; ++p) {
                for (int to = 0; to < threads; ++to) {
                    if (to != owners[i]) singles.insert(singles.end(), {static_cast<int>(i), p, to});
                }
            }
        }
        const std::size_t m = singles.size() / 3;
        const std::size_t pairs = bound >= 2 ? m * (m - 1) / 2 : 0;
        if (m + pairs > static_cast<std::size_t>(exhaustive_limit)) return false;
        for (std::size_t a = 0; a < m; ++a) {
            m_tables.push_back({singles[3 * a], singles[3 * a + 1], singles[3 * a + 2]});
        }
        for (std::size_t a = 0; a < m && bound >= 2; ++a) {
            for (std::size_t b = a + 1; b < m; ++b) {
                std::vector<int> t;
                add(t, singles[3 * a], singles[3 * a + 1], singles[3 * a + 2]);
                add(t, singles[3 * b], singles[3 * b + 1], singles[3 * b + 2]);
                if (t.size() == 6) m_tables.push_back(std::move(t));
            }
        }
        return true;
    }

    std::vector<std::vector<int>> m_tables;
};

template <class A>
int explore_batch(generator<A>& gen, std::vector<int>& s, const std::vector<const char*>& pos,
                  const interleave_options& iopt);

/// Runs fn() on a thread with a schedule thread's stack, as schedule thread 0 of every
/// schedule it runs (driver::run_on_calling_thread); returns what fn returns.
template <class A, class F>
int on_schedule_stack(F fn) {
    struct call {
        F* fn;
        int rc;
    } c{&fn, 2};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, detail::stack_bytes<A>() + driver_stack_margin);
    pthread_t t;
    const int started = pthread_create(&t, &attr, [](void* arg) -> void* {
        auto& x = *static_cast<call*>(arg);
        driver<A>::run_on_calling_thread(true);
        driver<A>::log_frame_states(false);
        x.rc = (*x.fn)();
        return nullptr;
    }, &c);
    pthread_attr_destroy(&attr);
    if (started != 0) {
        std::perror("pthread_create");
        return 2;
    }
    pthread_join(t, nullptr);
    return c.rc;
}

template <class A>
int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s describe|gen|gen-bytes|decode|explore ...\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[1];
    generator_options opt;
    interleave_options iopt;
    std::vector<const char*> pos;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 < argc && a == "--max-ops") opt.max_ops = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--slots") opt.slots = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--threads") opt.threads = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--depth") iopt.depth = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--interleavings") iopt.runs = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--bound") iopt.bound = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--interleave") {
            const std::string m = argv[++i];
            if (m == "pct") iopt.mode = interleave_mode::pct;
            else if (m == "random") iopt.mode = interleave_mode::random;
            else if (m == "exhaustive") iopt.mode = interleave_mode::exhaustive;
            else if (m == "none") iopt.mode = interleave_mode::none;
            else {
                std::fprintf(stderr, "%s: --interleave takes pct, random, exhaustive or none\n", argv[0]);
                return 2;
            }
        } else pos.push_back(argv[i]);
    }
    if (mode == "describe") {
        std::printf("%s\n", driver<A>::describe());
        return 0;
    }
    generator<A> gen(opt);
    std::vector<int> s;
    if ((mode == "gen" || mode == "gen-bytes") && pos.size() == 2) {
        const unsigned long long first = std::strtoull(pos[0], nullptr, 10);
        const long count = std::atol(pos[1]);
        std::vector<std::uint8_t> bytes;
        for (long i = 0; i < count; ++i) {
            if (mode == "gen") {
                seed_source src(first + i);
                gen.draw(src, s);
            } else {
                seed_source noise(first + i);
                bytes.resize(noise.draw(0, 96));
                for (auto& b : bytes) b = static_cast<std::uint8_t>(noise.draw(0, 255));
                byte_source src(bytes.data(), bytes.size());
                gen.draw(src, s);
            }
            print_schedule(s);
        }
        return 0;
    }
    if (mode == "decode" && pos.size() == 1) {
        FILE* f = std::fopen(pos[0], "rb");
        if (!f) {
            std::perror(pos[0]);
            return 2;
        }
        std::vector<std::uint8_t> bytes;
        for (int c; (c = std::fgetc(f)) != EOF;) bytes.push_back(static_cast<std::uint8_t>(c));
        std::fclose(f);
        byte_source src(bytes.data(), bytes.size());
        gen.draw(src, s);
        print_schedule(s);
        return 0;
    }
    if (mode == "limit" && pos.size() == 2) {
        // The driver alone: 1,000 schedules drawn first, then COUNT runs cycling through
        // them; prints the seconds the runs took.
        const long count = std::atol(pos[1]);
        const unsigned long long first = std::strtoull(pos[0], nullptr, 10);
        double seconds = 0.0;
        const int rc = on_schedule_stack<A>([&] {
            std::vector<std::vector<int>> pool(1000);
            for (std::size_t i = 0; i < pool.size(); ++i) {
                seed_source src(first + i);
                gen.draw(src, pool[i]);
            }
            std::vector<long long> shared(driver_words);
            timespec t0{}, t1{};
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int run_rc = 0;
            for (long i = 0; i < count && run_rc == 0; ++i) {
                const std::vector<int>& p = pool[static_cast<std::size_t>(i) % pool.size()];
                run_rc = driver<A>::run(p.data(), static_cast<int>(p.size()), shared.data(),
                                        driver_words);
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            seconds = double(t1.tv_sec - t0.tv_sec) + 1e-9 * double(t1.tv_nsec - t0.tv_nsec);
            return run_rc == 0 ? 0 : 3;
        });
        std::printf("%.6f\n", seconds);
        return rc;
    }
    if (mode == "run" && !pos.empty()) {
        std::vector<std::vector<int>> schedules;
        for (const char* path : pos) {
            FILE* f = std::fopen(path, "r");
            if (!f) {
                std::perror(path);
                return 2;
            }
            schedules.emplace_back();
            for (int w; std::fscanf(f, "%d", &w) == 1;) schedules.back().push_back(w);
            std::fclose(f);
        }
        return on_schedule_stack<A>([&] {
            std::vector<long long> shared(driver_words);
            for (const std::vector<int>& one : schedules) {
                if (driver<A>::run(one.data(), static_cast<int>(one.size()), shared.data(),
                                   driver_words) != 0) {
                    return 3;
                }
            }
            return 0;
        });
    }
    if (mode == "interleave" && pos.size() == 2) {
        std::vector<int> base;
        FILE* f = std::fopen(pos[0], "r");
        if (!f) {
            std::perror(pos[0]);
            return 2;
        }
        for (int w; std::fscanf(f, "%d", &w) == 1;) base.push_back(w);
        std::fclose(f);
        const long runs = std::atol(pos[1]);
        return on_schedule_stack<A>([&] {
            std::vector<long long> shared(driver_words);
            driver<A>::count_sync_points(true);
            if (driver<A>::run(base.data(), static_cast<int>(base.size()), shared.data(), driver_words) != 0) {
                return 3;
            }
            const int header = base[1] == 2 ? 5 : 6;
            std::vector<int> owners(static_cast<std::size_t>(base[4])), points(owners.size()), variant;
            long long total = 0;
            for (std::size_t k = 0; k < owners.size(); ++k) {
                owners[k] = base[header + op_words * static_cast<int>(k) + 1];
                points[k] = sync_points_of<A>(static_cast<int>(k));
                total += points[k];
            }
            interleave_options one = iopt;
            one.runs = 1;
            long found = 0, first_found = 0;
            for (long r = 1; r <= runs; ++r) {
                interleavings plans;
                plans.plan(one, static_cast<unsigned long long>(r), owners, points, base[3]);
                for (std::size_t k = 0; k < plans.size(); ++k) {
                    plans.apply(base, k, variant);
                    if (driver<A>::run(variant.data(), static_cast<int>(variant.size()), shared.data(),
                                       driver_words) != 0) {
                        return 3;
                    }
                    if (log_has_finding(shared.data())) {
                        ++found;
                        if (first_found == 0) first_found = r;
                        break;
                    }
                }
            }
            std::printf("points=%lld threads=%d runs=%ld found=%ld first=%ld\n", total, base[3], runs,
                        found, first_found);
            return 0;
        });
    }
    if (mode == "explore" && pos.size() == 3) {
        return on_schedule_stack<A>([&] { return explore_batch<A>(gen, s, pos, iopt); });
    }
    std::fprintf(stderr, "%s: bad arguments for mode %s\n", argv[0], mode.c_str());
    return 2;
}

/// `explore SEED COUNT SHM`: see the comment at the top.
template <class A>
int explore_batch(generator<A>& gen, std::vector<int>& s, const std::vector<const char*>& pos,
                  const interleave_options& iopt) {
    {
        const unsigned long long first = std::strtoull(pos[0], nullptr, 10);
        const long long count = std::atoll(pos[1]);
        const int fd = ::open(pos[2], O_RDWR);
        if (fd < 0) {
            std::perror(pos[2]);
            return 2;
        }
        void* p = ::mmap(nullptr, area_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) {
            std::perror("mmap");
            return 2;
        }
        auto* area = static_cast<volatile long long*>(p);
        long long* sched_words = static_cast<long long*>(p) + aw_header;
        long long* shared = sched_words + area_schedule_words;
        area[aw_magic] = area_magic;
        const bool interleave = iopt.mode != interleave_mode::none;
        driver<A>::count_sync_points(interleave);
        interleavings plans;
        std::vector<int> owners, points, variant;
        long long runs = 0;
        // Run one encoded schedule published in the area: 0 clean, 1 a finding, 3 refused.
        auto run_one = [&](const std::vector<int>& one) {
            {
                [[maybe_unused]] detail::harness_reads quiet;
                publish(area, sched_words, area[aw_seed], one.data(), one.size());
            }
            const int rc = driver<A>::run(one.data(), static_cast<int>(one.size()), shared, driver_words);
            area[aw_runs] = ++runs;
            if (rc != 0) return 3;
            return log_has_finding(shared) ? 1 : 0;
        };
        for (long long i = 0; i < count; ++i) {
            {
                // The explorer's own work, unseen by TSan (it costs more than the schedule
                // there); the schedule threads read `s` after the driver's start edge.
                [[maybe_unused]] detail::harness_reads quiet;
                seed_source src(first + i);
                gen.draw(src, s);
                area[aw_seed] = static_cast<long long>(first + i);
            }
            int verdict = run_one(s);
            if (verdict == 0 && interleave && s[3] > 1) {
                {
                    [[maybe_unused]] detail::harness_reads quiet;
                    const int header = s[1] == 2 ? 5 : 6;
                    owners.resize(static_cast<std::size_t>(s[4]));
                    points.resize(owners.size());
                    for (std::size_t k = 0; k < owners.size(); ++k) {
                        owners[k] = s[header + op_words * static_cast<int>(k) + 1];
                        points[k] = sync_points_of<A>(static_cast<int>(k));
                    }
                    plans.plan(iopt, first + i, owners, points, s[3]);
                }
                for (std::size_t k = 0; k < plans.size() && verdict == 0; ++k) {
                    plans.apply(s, k, variant);
                    verdict = run_one(variant);
                }
            }
            if (verdict == 3) {
                area[aw_stop] = 2;
                return 3;
            }
            if (verdict == 1) {
                area[aw_stop] = 1;
                return 0;
            }
            area[aw_done] = i + 1;
        }
        area[aw_length] = 0;
        return 0;
    }
}

}  // namespace stresscoro::explore

#ifndef STRESSCORO_EXPLORE_NO_MAIN
int main(int argc, char** argv) { return stresscoro::explore::main<stresscoro_target>(argc, argv); }
#endif

#endif  // STRESSCORO_EXPLORE_HPP_INCLUDED
