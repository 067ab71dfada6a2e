"""The native engine (`stresscoro explore`) against the Hypothesis campaign, in one run.

What it measures, on one target and sanitizer (default: task under ASan, 30-op schedules):

- explore: explore_batches (the engine `stresscoro explore` runs) over --schedules
  schedules: native generation + the driver in process, in supervised batches. Rates in
  schedules per wall second and per CPU second of the batch processes (per core; the
  machine is shared, so CPU seconds are the fairer measure of what one core does).
- limit: the explorer program's `limit` mode, the driver alone in process running 1,000
  pre-drawn schedules over and over on one thread (no generation, no batches): what the
  machine can execute.
- campaign: run_campaign (the Hypothesis engine of `stresscoro fuzz`) with the same
  max_ops, --examples examples, no reproducers. Rate per wall second.

Options add the issue's other figures:
  --tsan          the same on shared-task under TSan (2 threads, as campaigns use, then
                  1), then a line `tsan explore=<per core>/s per core ...` (the issue's
                  goal: at least 50,000 with 2 threads).
  --classes       every seeded built-in class by both engines: seconds to the minimal
                  schedule, medians compared (explore must be at most half).
  --twins N       every correct twin explored for N schedules under ASan (clean expected;
                  twins of threaded classes with 2 threads and PCT interleavings).
  --preemption    the rate with interleavings inside ops (PCT, the default) beside the
                  rate without (--interleave none): on shared-task with 2 threads (its
                  refcount is atomic: each schedule runs once more, preempted) and on
                  task with 1 thread (nothing to preempt: the two rates should match).

Run by hand from the repository root; note the machine's load (uptime) with the figures:

    .venv/bin/python bench/explore.py [--target task] [--sanitizer asan] [--max-ops 30]
        [--schedules 300000] [--examples 500] [--tsan] [--classes] [--twins N]

The last line printed is exactly
`explore=<schedules/s> campaign=<schedules/s> limit=<schedules/s> ratio=<explore/campaign>`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stresscoro import targets  # noqa: E402
from stresscoro.explore import NativeProgram, explore_batches, run_explore  # noqa: E402
from stresscoro.runner import run_campaign  # noqa: E402
from stresscoro.session import TargetSession  # noqa: E402


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def explore_rate(program: NativeProgram, schedules: int, settings: dict,
                 interleave: dict | None = None) -> tuple[float, float]:
    cpu0 = _children_cpu()
    seen = explore_batches(program, schedules=schedules, settings=settings, max_findings=1,
                           interleave=interleave)
    cpu = _children_cpu() - cpu0
    if seen.stops:
        raise SystemExit(f"{program.target.name} is not clean: {seen.stops[0][0].render()}")
    return seen.schedules / seen.elapsed_s, seen.schedules / max(cpu, 1e-9)


def limit_rate(program: NativeProgram, runs: int, settings: dict) -> tuple[float, float]:
    args = [str(program.path), "limit", "7", str(runs)]
    for key, value in settings.items():
        if value:
            args += [f"--{key.replace('_', '-')}", str(value)]
    cpu0 = _children_cpu()
    out = subprocess.run(args, capture_output=True, text=True, check=True,
                         env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    cpu = _children_cpu() - cpu0
    seconds = float(out.stdout.split()[-1])
    return runs / seconds, runs / max(cpu, 1e-9)


def campaign_rate(target, sanitizer: str, examples: int, max_ops: int, threads: int) -> float:
    res = run_campaign(target, sanitizer, max_examples=examples, max_ops=max_ops, seed=0,
                       database=None, out_dir=None, verify=False, threads=threads)
    if res.findings:
        raise SystemExit(f"{target.name} is not clean under the campaign")
    return res.examples / res.elapsed_s


def engines(name: str, sanitizer: str, max_ops: int, threads: int, schedules: int,
            examples: int) -> tuple[float, float, float, float]:
    target = targets.get(name)
    program = NativeProgram(target, sanitizer)
    settings = {"max_ops": max_ops, "threads": threads}
    explore_wall, explore_core = explore_rate(program, schedules, settings)
    limit_wall, limit_core = limit_rate(program, schedules, settings)
    campaign = campaign_rate(target, sanitizer, examples, max_ops, threads)
    print(f"{name}/{sanitizer}, {max_ops}-op schedules, {threads} thread(s):")
    print(f"  explore  {explore_wall:>10,.0f}/s wall  {explore_core:>10,.0f}/s per core (CPU)")
    print(f"  limit    {limit_wall:>10,.0f}/s wall  {limit_core:>10,.0f}/s per core (CPU)")
    print(f"  campaign {campaign:>10,.0f}/s wall")
    print(f"  explore/limit per core {explore_core / limit_core:.2f} (goal >= 0.25); "
          f"explore/campaign {explore_wall / campaign:,.0f}x (goal >= 200)")
    return explore_wall, campaign, limit_wall, explore_core


def classes() -> None:
    """Seconds to the minimal schedule, per seeded class, by both engines."""
    rows = []
    for t in targets.builtin_targets():
        if not t.bug_class:
            continue
        sanitizer = "tsan" if t.expected == "data-race" else "asan"
        NativeProgram(t, sanitizer)  # built before the clock starts, as the module is
        TargetSession(t, sanitizer, symbolize=False).open().close()
        nat = run_explore(t, sanitizer, seed=1, schedules=2_000_000, out_dir=None, verify=False)
        hyp = run_campaign(t, sanitizer, seed=1, database=None, out_dir=None, verify=False)

        def best(res):
            found = [f for f in res.findings if f.finding.kind == t.expected]
            if not found:
                return None, None
            f = min(found, key=lambda b: len(b.schedule.ops))
            return len(f.schedule.ops), f.minimal_s

        rows.append((t.name, *best(nat), *best(hyp)))
        n_len, n_s, h_len, h_s = rows[-1][1:]
        print(f"  {t.name:<28} explore {n_len} ops in {n_s if n_s is None else round(n_s, 2)} s; "
              f"hypothesis {h_len} ops in {h_s if h_s is None else round(h_s, 2)} s", flush=True)
    nat_s = [r[2] for r in rows if r[2] is not None]
    hyp_s = [r[4] for r in rows if r[4] is not None]
    print(f"  found: explore {len(nat_s)}/{len(rows)}, hypothesis {len(hyp_s)}/{len(rows)}; "
          f"same or shorter minimal length by explore: "
          f"{sum(1 for r in rows if r[1] is not None and (r[3] is None or r[1] <= r[3]))}/{len(rows)}")
    if nat_s and hyp_s:
        print(f"  median seconds to minimal: explore {statistics.median(nat_s):.2f}, "
              f"hypothesis {statistics.median(hyp_s):.2f} "
              f"(ratio {statistics.median(nat_s) / statistics.median(hyp_s):.2f}, goal <= 0.5)")


def preemption(schedules: int) -> None:
    """Schedules per CPU-second with PCT interleavings and without, same seeds."""
    for name, threads in (("shared-task", 2), ("task", 1)):
        program = NativeProgram(targets.get(name), "asan")
        settings = {"max_ops": 30, "threads": threads}
        rates = {mode: explore_rate(program, schedules, settings, {"interleave": mode})[1]
                 for mode in ("none", "pct")}
        print(f"  {name:<12} {threads} thread(s): {rates['pct']:>10,.0f}/s per core with "
              f"preemption (pct), {rates['none']:>10,.0f}/s without "
              f"(ratio {rates['pct'] / rates['none']:.2f})", flush=True)


def twins(n: int, max_ops: int) -> None:
    for t in targets.builtin_targets():
        if t.bug_class or "asan" not in t.sanitizers:
            continue
        program = NativeProgram(t, "asan")
        t0 = time.perf_counter()
        seen = explore_batches(program, schedules=n, max_findings=1,
                               settings={"max_ops": max_ops, "threads": t.threads or 1})
        verdict = "clean" if not seen.stops else f"STOPPED: {seen.stops[0][0].render()}"
        print(f"  {t.name:<20} {seen.schedules:>12,} ASan schedules in "
              f"{time.perf_counter() - t0:7.1f} s: {verdict}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="task")
    p.add_argument("--sanitizer", default="asan")
    p.add_argument("--max-ops", type=int, default=30)
    p.add_argument("--schedules", type=int, default=300_000)
    p.add_argument("--examples", type=int, default=500)
    p.add_argument("--tsan", action="store_true")
    p.add_argument("--classes", action="store_true")
    p.add_argument("--twins", type=int, default=0)
    p.add_argument("--preemption", action="store_true")
    args = p.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} cores", flush=True)
    if args.tsan:
        # Two schedule threads (what TSan campaigns run, and what a race needs), then one.
        per_core = {}
        for threads in (2, 1):
            per_core[threads] = engines("shared-task", "tsan", args.max_ops, threads,
                                        max(args.schedules // 2, 1000),
                                        max(args.examples // 5, 50))[3]
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"tsan explore={per_core[2]:.0f}/s per core (2 threads; goal >= 50000) "
              f"{per_core[1]:.0f}/s per core (1 thread) on shared-task, load {load}", flush=True)
    if args.classes:
        classes()
    if args.twins:
        twins(args.twins, args.max_ops)
    if args.preemption:
        preemption(args.schedules)
    explore, campaign, limit, _ = engines(args.target, args.sanitizer, args.max_ops, 1,
                                          args.schedules, args.examples)
    print(f"explore={explore:.0f} campaign={campaign:.0f} limit={limit:.0f} "
          f"ratio={explore / campaign:.0f}")


if __name__ == "__main__":
    main()
