"""Worker costs, per sanitizer (asan, tsan, none): what one schedule costs to run.

Measures, on this machine:

- cold start: a fresh SanitizedWorker, from spawn until its hello (interpreter start,
  sanitizer runtime, target module loaded); the median of 10 starts of the built-in
  "shared-task" module.
- crash -> ready: a schedule whose task segfaults (tests/adapters/misbehave.cpp), then
  the next, clean schedule on the same session. Reported as the crashing run (until
  its outcome is classified, sanitizer report included), the next run (respawn plus
  the run itself), and their sum; medians of 10.
- schedules/s: one 30-op schedule (make, copy, resume, touch, drop, swap, copy_assign
  over 4 slots on thread 0) run over and over on a live "shared-task" worker through
  TargetSession.run (encode, run, classify), for about 2 s.

A sanitizer whose target cannot be built or started here is skipped with a loud note.
Builds are cached (~/.cache/stresscoro), so the first run also pays for compiling.

Run by hand from the repository root:

    .venv/bin/python bench/workers.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stresscoro.build import BuildError, BuildOptions, build_target  # noqa: E402
from stresscoro.oracle import EV_SKIP  # noqa: E402
from stresscoro.schedule import Schedule, make, op  # noqa: E402
from stresscoro.session import TargetSession  # noqa: E402
from stresscoro.targets import from_adapter, get  # noqa: E402
from stresscoro.worker import SanitizedWorker, WorkerError  # noqa: E402

SANITIZERS = ("asan", "tsan", "none")
MISBEHAVE = REPO / "tests" / "adapters" / "misbehave.cpp"
STARTS = 10
CRASHES = 10
THROUGHPUT_S = 2.0
FINE, SEGFAULT = 0, 1  # misbehave's factories


def throughput_schedule() -> Schedule:
    """30 ops over 4 slots on thread 0, every op on a live slot (so none is skipped)."""
    ops = [
        make(0), make(1), copy(0, 2), resume(0), touch(2), swap(1, 2), copy_assign(0, 1),
        make(3), touch(3), resume(3), copy(3, 0), drop(1), copy(2, 1), copy_assign(2, 2),
        touch(0), swap(0, 3), resume(1), drop(2), make(2), copy_assign(2, 0), touch(1),
        swap(2, 3), drop(0), copy(1, 0), resume(2), touch(3), copy_assign(3, 1), drop(3),
        copy(2, 3), touch(0),
    ]
    s = Schedule(target="shared-task", ops=tuple(ops), slots=4)
    assert len(s) == 30
    return s


def copy(src: int, dst: int):
    return op("copy", src, dst)


def copy_assign(src: int, dst: int):
    return op("copy_assign", src, dst)


def swap(a: int, b: int):
    return op("swap", a, b)


def resume(slot: int):
    return op("resume", slot)


def touch(slot: int):
    return op("touch", slot)


def drop(slot: int):
    return op("drop", slot)


def _build(target, sanitizer: str):
    return build_target(target.adapter, BuildOptions(
        sanitizer=sanitizer, include_dirs=target.include_dirs, defines=target.defines,
        cxxflags=target.cxxflags), name=target.name)


def cold_start_ms(target, sanitizer: str) -> float:
    build = _build(target, sanitizer)
    times = []
    for _ in range(STARTS):
        worker = SanitizedWorker(build)
        try:
            worker.start()
            times.append(worker.last_start_s * 1000)
        finally:
            worker.close()
    return statistics.median(times)


def crash_to_ready_ms(sanitizer: str, symbolize: bool = True) -> tuple[float, float]:
    """Medians of (crashing run, next clean run) in ms. Campaigns search with
    symbolize=False and symbolize only each minimal schedule's final re-run."""
    crash_s = Schedule(target="misbehave", ops=(make(0, factory=SEGFAULT), op("resume", 0)))
    fine_s = Schedule(target="misbehave", ops=(make(0, factory=FINE), op("resume", 0)))
    crash_times, ready_times = [], []
    with TargetSession(from_adapter(MISBEHAVE), sanitizer, timeout_s=60,
                       symbolize=symbolize) as session:
        first = session.run(fine_s)
        if not first.ok:
            raise RuntimeError(f"misbehave 'fine' is not clean under {sanitizer}: {first.findings}")
        for _ in range(CRASHES):
            t0 = time.perf_counter()
            bad = session.run(crash_s)
            t1 = time.perf_counter()
            good = session.run(fine_s)
            t2 = time.perf_counter()
            if bad.ok or bad.raw.status != "crashed" or not good.ok:
                raise RuntimeError(f"unexpected outcomes under {sanitizer}: "
                                   f"{bad.findings} / {good.findings}")
            crash_times.append((t1 - t0) * 1000)
            ready_times.append((t2 - t1) * 1000)
    return statistics.median(crash_times), statistics.median(ready_times)


def schedules_per_s(target, sanitizer: str, schedule: Schedule) -> float:
    with TargetSession(target, sanitizer, timeout_s=60) as session:
        warm = session.run(schedule)
        if not warm.ok:
            raise RuntimeError(f"the throughput schedule is not clean under {sanitizer}: "
                               f"{[f.kind for f in warm.findings]}")
        skipped_ops = [ev[1] for ev in warm.raw.events if ev[0] == EV_SKIP]
        if skipped_ops:
            raise RuntimeError(f"the driver skipped ops {skipped_ops}: fix throughput_schedule()")
        pid = session.worker.pid
        n = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < THROUGHPUT_S:
            session.run(schedule)
            n += 1
        if session.worker.pid != pid:
            raise RuntimeError(f"the worker was replaced during the throughput run ({sanitizer})")
    return n / elapsed


def main() -> int:
    shared = get("shared-task")
    schedule = throughput_schedule()
    print(f"stresscoro worker bench: {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"  cold start: median of {STARTS} starts ({shared.name}); crash->ready: median of "
          f"{CRASHES} (misbehave segfault, then a clean run); throughput: {len(schedule)}-op "
          f"{shared.name} schedule for {THROUGHPUT_S:g} s")
    rows, skipped = [], []
    for sanitizer in SANITIZERS:
        try:
            cold = cold_start_ms(shared, sanitizer)
            crash, ready = crash_to_ready_ms(sanitizer)
            quick_crash, quick_ready = crash_to_ready_ms(sanitizer, symbolize=False)
            rate = schedules_per_s(shared, sanitizer, schedule)
        except (BuildError, WorkerError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"\n!!! SKIPPED {sanitizer}: cannot build or start its worker here: "
                  f"{first_line}\n", file=sys.stderr)
            skipped.append(sanitizer)
            continue
        rows.append((sanitizer, cold, crash, ready, quick_crash + quick_ready, rate))

    print()
    print(f"{'sanitizer':<10}{'cold start':>12}{'crash run':>12}{'next run':>12}"
          f"{'crash->ready':>14}{'unsymbolized':>14}{'schedules/s':>14}")
    for sanitizer, cold, crash, ready, quick, rate in rows:
        print(f"{sanitizer:<10}{cold:>9.1f} ms{crash:>9.1f} ms{ready:>9.1f} ms"
              f"{crash + ready:>11.1f} ms{quick:>11.1f} ms{rate:>14.0f}")
    print()
    parts = [f"{s}: start {c:.0f} ms, crash->ready {cr + r:.0f} ms ({q:.0f} ms unsymbolized), "
             f"{rate:.0f} sched/s" for s, c, cr, r, q, rate in rows]
    summary = "; ".join(parts) if parts else "nothing measured"
    if skipped:
        summary += f"; SKIPPED: {', '.join(skipped)}"
    print(f"summary: {summary}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
