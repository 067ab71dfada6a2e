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
//
// Options after the mode: --max-ops N --slots N --threads N. Schedules are printed one
// a line as the driver's int encoding.
//
// `explore` keeps the schedule in flight in the shared file SHM (int64 words): word 0
// the magic, word 1 the seed in flight, word 2 the schedules finished, word 3 the
// length of the encoded schedule, then the encoded schedule, then the driver's shared
// area. A crash leaves the exact schedule there for the parent; a finding the driver
// reports without crashing (a leak, a broken invariant) is checked by the parent the
// same way: the run stops, word 4 says why (1 = the driver's log has findings).
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
                       aw_header = 8 };
// The longest schedule the generator writes: encoding version 3's header, max_ops ops
// and its preemptions.
inline constexpr int area_schedule_words = 6 + op_words * max_ops + 3 * max_drawn_preemptions;
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
                                         unsigned long long seed, const int* s, std::size_t n) {
    area[aw_seed] = static_cast<long long>(seed);
    area[aw_length] = static_cast<long long>(n);
    for (std::size_t w = 0; w < n; ++w) words[w] = s[w];
}

template <class A>
int explore_batch(generator<A>& gen, std::vector<int>& s, const std::vector<const char*>& pos);

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
    std::vector<const char*> pos;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 < argc && a == "--max-ops") opt.max_ops = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--slots") opt.slots = std::atoi(argv[++i]);
        else if (i + 1 < argc && a == "--threads") opt.threads = std::atoi(argv[++i]);
        else pos.push_back(argv[i]);
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
    if (mode == "explore" && pos.size() == 3) {
        return on_schedule_stack<A>([&] { return explore_batch<A>(gen, s, pos); });
    }
    std::fprintf(stderr, "%s: bad arguments for mode %s\n", argv[0], mode.c_str());
    return 2;
}

/// `explore SEED COUNT SHM`: see the comment at the top.
template <class A>
int explore_batch(generator<A>& gen, std::vector<int>& s, const std::vector<const char*>& pos) {
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
        for (long long i = 0; i < count; ++i) {
            {
                // The explorer's own work, unseen by TSan (it costs more than the schedule
                // there); the schedule threads read `s` after the driver's start edge.
                [[maybe_unused]] detail::harness_reads quiet;
                seed_source src(first + i);
                gen.draw(src, s);
                publish(area, sched_words, first + i, s.data(), s.size());
            }
            const int rc = driver<A>::run(s.data(), static_cast<int>(s.size()), shared, driver_words);
            if (rc != 0) {
                area[aw_stop] = 2;
                return 3;
            }
            if (log_has_finding(shared)) {
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
