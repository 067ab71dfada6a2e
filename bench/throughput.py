"""Campaign throughput: examples/s of a campaign on a correct target versus bare Hypothesis.

What it measures, in one process and one run:

- bare: a Hypothesis test over the campaign's own strategy (`schedules_for(session)`,
  same max_ops / slots / threads as stresscoro.runner.run_campaign) with the campaign's
  settings (deadline=None, database=None, every health check suppressed, quiet, a fixed
  seed) whose body does nothing. Its rate is what generation alone allows.
- harness: the same test, the same seed, the same examples (checked by a digest of every
  schedule's encoding), but the body runs `session.run(schedule)` on a live worker, as
  run_campaign's does. The target must be correct, so no example fails and nothing shrinks.
- ratio = harness rate / bare rate. The design goal is ratio >= 0.7.

The bare and harness runs are interleaved --repeats times (default 3) and their rates
pooled, because on a shared machine other processes' load moves single runs a lot. Both
sides' CPU time is measured too (this process; the worker via psutil), giving a
"CPU-bound ratio": what the ratio would be if no time were lost waiting for a core or a
wake-up.

Then, where the harness's time goes: an instrumented harness run (timers around
Schedule.check_target, SanitizedWorker.run and inside it alive(), the os.write of the
request, the wait for the reply (_wait_reply or _read_message, with its psutil memory
checks), the stderr file read and the event unpacking, and oracle.classify); an IPC floor
(worker.run of an empty schedule: pipe round trip, one driver thread started and joined,
per-run bookkeeping); and with --profile (automatic when the ratio is below the goal)
the top functions of a cProfile of one more harness run.

Run by hand from the repository root (builds are cached in ~/.cache/stresscoro):

    .venv/bin/python bench/throughput.py [--target shared-task] [--sanitizer asan]
                                         [--examples 2000] [--seed 0] [--repeats 3]
                                         [--profile] [--quick]

The last line printed is exactly `ratio=<harness rate / bare rate, 2 decimals>`.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import hashlib
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import hypothesis  # noqa: E402
import psutil  # noqa: E402
from hypothesis import HealthCheck, Verbosity, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

import stresscoro.session as session_mod  # noqa: E402
import stresscoro.worker as worker_mod  # noqa: E402
from stresscoro.runner import default_threads  # noqa: E402
from stresscoro.schedule import Schedule  # noqa: E402
from stresscoro.session import TargetSession  # noqa: E402
from stresscoro.strategies import DEFAULT_MAX_OPS, DEFAULT_SLOTS, schedules_for  # noqa: E402
from stresscoro.targets import get  # noqa: E402
from stresscoro.worker import SanitizedWorker  # noqa: E402

GOAL = 0.7


def campaign_settings(examples: int) -> settings:
    """The settings run_campaign uses (with database=None), for both tests."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=True,
                    print_blob=False, verbosity=Verbosity.quiet)


@dataclasses.dataclass
class Run:
    examples: int
    wall_s: float
    cpu_s: float  # this process
    worker_cpu_s: float  # the worker process (all its threads), 0 for a bare run
    digest: str

    @property
    def rate(self) -> float:
        return self.examples / self.wall_s


def worker_cpu_s(session: TargetSession | None) -> float:
    if session is None or session.worker is None or session.worker.pid is None:
        return 0.0
    try:
        t = psutil.Process(session.worker.pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def run_test(strategy, examples: int, seed: int, body,
             session: TargetSession | None = None) -> Run:
    """Run a @given test with `body`; `session` only for the worker's CPU time."""
    count = 0
    digest = hashlib.sha256()

    def inner(schedule: Schedule) -> None:
        nonlocal count
        count += 1
        digest.update(repr(schedule.encode()).encode())
        body(schedule)

    test = hypothesis_seed(seed)(campaign_settings(examples)(given(strategy)(inner)))
    pid0, w0 = (session.worker.pid if session else None), worker_cpu_s(session)
    c0, t0 = time.process_time(), time.perf_counter()
    test()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if session is not None and session.worker.pid != pid0:
        w = float("nan")  # the worker was replaced: its CPU time is lost
    else:
        w = worker_cpu_s(session) - w0
    return Run(count, wall, cpu, w, digest.hexdigest()[:12])


class Timers:
    """Accumulated seconds and call counts by name."""

    def __init__(self) -> None:
        self.s: dict[str, float] = {}
        self.n: dict[str, int] = {}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.s[name] = self.s.get(name, 0.0) + time.perf_counter() - t0
                self.n[name] = self.n.get(name, 0) + 1
        return timed


class _TimedOs:
    """Stands in for the `os` module inside stresscoro.worker, timing os.write only."""

    def __init__(self, timers: Timers) -> None:
        self.write = timers.wrap("worker.run: os.write of the request", os.write)

    def __getattr__(self, name: str):
        return getattr(os, name)


def instrumented_run(session: TargetSession, strategy, examples: int, seed: int):
    """A harness run with timers around the pieces of session.run. Patches are undone."""
    t = Timers()
    patches = [
        (Schedule, "check_target", "check_target"),
        (session_mod, "classify", "classify"),
        (SanitizedWorker, "run", "worker.run"),
        # The reply wait (with its psutil memory checks) by either name it has had.
        (SanitizedWorker, "_wait_reply", "worker.run: wait for the reply"),
        (SanitizedWorker, "_read_message", "worker.run: wait for the reply"),
        (SanitizedWorker, "_over_memory", "psutil memory check"),
        (SanitizedWorker, "_take_stderr", "worker.run: read the stderr file"),
        (SanitizedWorker, "_events", "worker.run: unpack events"),
        (SanitizedWorker, "alive", "worker.run: alive() (psutil poll)"),
    ]
    patches = [(obj, attr, name) for obj, attr, name in patches if hasattr(obj, attr)]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    for obj, attr, name in patches:
        setattr(obj, attr, t.wrap(name, getattr(obj, attr)))
    worker_mod.os = _TimedOs(t)
    session.run = t.wrap("session.run", session.run)
    try:
        run = run_test(strategy, examples, seed, lambda s: session.run(s), session)
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)
        worker_mod.os = os
        del session.run
    return t, run


def ipc_floor_ms(session: TargetSession, runs: int = 500) -> tuple[float, float]:
    """(median, min) ms of worker.run of an empty schedule: pipe round trip, one driver
    thread started and joined, per-run bookkeeping; no ops."""
    encoded = Schedule(session.target.name, (), slots=1, threads=1).encode()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        raw = session.worker.run(encoded)
        times.append(time.perf_counter() - t0)
        if raw.status != "ok":
            raise RuntimeError(f"an empty schedule did not run cleanly: {raw.status} {raw.detail}")
    return statistics.median(times) * 1000, min(times) * 1000


def profile_run(session: TargetSession, strategy, examples: int, seed: int, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    run_test(strategy, examples, seed, lambda s: session.run(s))
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(
        r"stresscoro/|schedules\.py|select|posix", 30)
    # Trim pstats' preamble lines and long paths for a readable report.
    text = out.getvalue().replace(str(REPO) + "/", "").replace(
        str(Path(hypothesis.__file__).parent) + "/", "hypothesis/")
    return "\n".join(l for l in text.splitlines() if l.strip() and "List reduced" not in l)


def _ms(s: float, n: int) -> str:
    return f"{s / n * 1000:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="shared-task")
    ap.add_argument("--sanitizer", default="asan", choices=("asan", "tsan", "none"))
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3,
                    help="bare/harness pairs, interleaved; rates are pooled over them")
    ap.add_argument("--profile", action="store_true",
                    help="always print a cProfile of a harness run (automatic below the goal)")
    ap.add_argument("--top", type=int, default=25, help="functions shown by the profile")
    ap.add_argument("--quick", action="store_true",
                    help="rates only: no breakdown, no profile (for A/B comparisons)")
    args = ap.parse_args()

    target = get(args.target)
    if target.expected != "clean":
        print(f"warning: {target.name} is expected to give {target.expected!r}; the harness "
              "rate then includes crashes and shrinking", file=sys.stderr)
    threads = default_threads(args.sanitizer)
    print(f"stresscoro throughput bench: Python {sys.version.split()[0]}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    print(f"target {target.name} under {args.sanitizer}, {args.examples} examples x "
          f"{args.repeats} repeats, seed {args.seed}, max_ops {DEFAULT_MAX_OPS}, slots "
          f"{DEFAULT_SLOTS}, threads {threads}")

    with TargetSession(target, args.sanitizer, symbolize=False) as session:
        strategy = schedules_for(session, max_ops=DEFAULT_MAX_OPS, slots=DEFAULT_SLOTS,
                                 threads=threads)
        # Warm both paths (imports, strategy caches, the worker's first run).
        run_test(strategy, 50, args.seed + 1, lambda s: None)
        run_test(strategy, 50, args.seed + 1, lambda s: session.run(s))

        ops_seen: list[int] = []

        def harness_body(s: Schedule) -> None:
            ops_seen.append(len(s.ops))
            outcome = session.run(s)
            if not outcome.ok:
                raise AssertionError(f"{target.name} is not clean: {outcome.describe(s)}")

        starts = session.worker.starts
        bares: list[Run] = []
        harnesses: list[Run] = []
        print()
        print(f"{'repeat':<8}{'run':<9}{'examples':>9}{'wall s':>8}{'ex/s':>7}{'cpu s':>8}"
              f"{'worker cpu s':>13}  digest")
        for r in range(args.repeats):
            for kind, runs, body, sess in (("bare", bares, lambda s: None, None),
                                           ("harness", harnesses, harness_body, session)):
                run = run_test(strategy, args.examples, args.seed, body, sess)
                runs.append(run)
                print(f"{r + 1:<8}{kind:<9}{run.examples:>9}{run.wall_s:>8.2f}{run.rate:>7.0f}"
                      f"{run.cpu_s:>8.2f}{run.worker_cpu_s:>13.2f}  {run.digest}")
        restarts = session.worker.starts - starts
        n_b, n_h = sum(r.examples for r in bares), sum(r.examples for r in harnesses)
        wall_b, wall_h = sum(r.wall_s for r in bares), sum(r.wall_s for r in harnesses)
        cpu_b = sum(r.cpu_s for r in bares)
        cpu_h, wcpu_h = sum(r.cpu_s for r in harnesses), sum(r.worker_cpu_s for r in harnesses)
        bare_rate, harn_rate = n_b / wall_b, n_h / wall_h
        ratio = harn_rate / bare_rate
        digests = {(r.digest, r.examples) for r in bares + harnesses}
        print(f"same examples in every run: {'yes' if len(digests) == 1 else 'NO'}; worker "
              f"restarts during the harness runs: {restarts}; mean ops per schedule: "
              f"{statistics.mean(ops_seen):.1f}; per-repeat ratios: "
              f"{', '.join(f'{h.rate / b.rate:.2f}' for b, h in zip(bares, harnesses))}")
        per_b, per_h = wall_b / n_b * 1000, wall_h / n_h * 1000
        print(f"per example (wall): bare {per_b:.3f} ms, harness {per_h:.3f} ms; execution "
              f"adds {per_h - per_b:.3f} ms, and ratio >= {GOAL} allows "
              f"{per_b * (1 / GOAL - 1):.3f} ms")
        cpu_ratio = (cpu_b / n_b) / ((cpu_h + wcpu_h) / n_h)
        print(f"per example (CPU): bare {_ms(cpu_b, n_b)} ms; harness {_ms(cpu_h, n_h)} ms "
              f"here + {_ms(wcpu_h, n_h)} ms in the worker. CPU-bound ratio (no time lost "
              f"waiting for a core or a wake-up): {cpu_ratio:.2f}")
        waited = per_h - (cpu_h + wcpu_h) / n_h * 1000
        print(f"harness wall not spent on either side's CPU (wake-ups, waiting for a core "
              f"held by another process): {waited:.3f} ms per example")

        if args.quick:
            session.close()
            print(f"bare={bare_rate:.0f}/s harness={harn_rate:.0f}/s (pooled over {args.repeats} repeats)")
            print(f"ratio={ratio:.2f}")
            return 0

        # Where the harness's time goes.
        t, run = instrumented_run(session, strategy, args.examples, args.seed)
        n, elapsed = run.examples, run.wall_s
        floor_med, floor_min = ipc_floor_ms(session)
        print()
        print(f"where the harness's time goes (instrumented run: {n} examples in {elapsed:.2f} s "
              f"= {n / elapsed:.0f}/s; the timers add a little):")
        print(f"  {'piece':<44}{'calls':>7}{'total s':>9}{'ms/call':>9}{'ms/ex':>7}{'of run':>8}")
        order = ["session.run", "check_target", "worker.run",
                 "worker.run: alive() (psutil poll)", "worker.run: os.write of the request",
                 "worker.run: wait for the reply", "psutil memory check",
                 "worker.run: read the stderr file", "worker.run: unpack events", "classify"]
        for name in order:
            s, c = t.s.get(name, 0.0), t.n.get(name, 0)
            indent = "  " * (name.startswith("worker.run:") or name == "psutil memory check") + \
                "  " * (name != "session.run")
            label = indent + name.removeprefix("worker.run: ")
            per = f"{s / c * 1000:>9.3f}" if c else f"{'-':>9}"
            print(f"  {label:<44}{c:>7}{s:>9.3f}{per}{s / n * 1000:>7.3f}{s / elapsed * 100:>7.1f}%")
        known = sum(t.s.get(k, 0.0) for k in order[3:9])
        rest = t.s["worker.run"] - known
        print(f"  {'      rest of worker.run (stat, pack, header)':<44}{'':>7}{rest:>9.3f}"
              f"{'':>9}{rest / n * 1000:>7.3f}{rest / elapsed * 100:>7.1f}%")
        rest = t.s["session.run"] - t.s["worker.run"] - t.s.get("check_target", 0) - t.s.get("classify", 0)
        print(f"  {'    rest of session.run (encode, properties)':<44}{'':>7}{rest:>9.3f}"
              f"{'':>9}{rest / n * 1000:>7.3f}{rest / elapsed * 100:>7.1f}%")
        out = elapsed - t.s["session.run"]
        print(f"  {'Hypothesis + generation (outside run)':<44}{n:>7}{out:>9.3f}"
              f"{out / n * 1000:>9.3f}{out / n * 1000:>7.3f}{out / elapsed * 100:>7.1f}%")
        print(f"  the same outside-run work in the bare runs: {per_b:.3f} ms per example")
        round_trip = (t.s.get("worker.run: os.write of the request", 0.0) +
                      t.s.get("worker.run: wait for the reply", 0.0)) / n * 1000
        print(f"  IPC floor, worker.run of an empty schedule (500 runs): median {floor_med:.3f} "
              f"ms, min {floor_min:.3f} ms; request+reply in this run: {round_trip:.3f} ms "
              f"per example, {max(0.0, round_trip - floor_med):.3f} ms above the floor (the ops "
              "themselves, and wake-ups that are slower between Hypothesis examples than "
              "back to back)")
        if args.profile or ratio < GOAL:
            print()
            why = "asked for" if args.profile else f"ratio {ratio:.2f} < goal {GOAL}"
            print(f"cProfile of a harness run ({args.examples} examples; {why}):")
            print(profile_run(session, strategy, args.examples, args.seed, args.top))

    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"bare={bare_rate:.0f}/s harness={harn_rate:.0f}/s (pooled over {args.repeats} repeats)")
    print(f"ratio={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
