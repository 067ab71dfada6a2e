"""Allocation accounting cost: an allocation-heavy op in the worker versus the same
straight-line program (the C++ reproducer of that schedule) under the same sanitizer.

The op (bench/adapters/await_loop.cpp) resumes a task that awaits 2^K - 1 fresh child
tasks in a loop: one frame allocation and free per await, all counted by the driver's
per-schedule allocation table. The goal (issue 9): the worker costs at most 3 times the
standalone program. Reported: the median of 3 runs of each, seconds, and the ratio.

Run by hand from the repository root:

    .venv/bin/python bench/alloc.py [K ...]        (default K = 14 18)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stresscoro import reproducer  # noqa: E402
from stresscoro.oracle import Finding  # noqa: E402
from stresscoro.schedule import Schedule, make, op  # noqa: E402
from stresscoro.session import TargetSession  # noqa: E402
from stresscoro.targets import from_adapter  # noqa: E402

ADAPTER = REPO / "bench" / "adapters" / "await_loop.cpp"
SANITIZERS = ("asan", "none")
RUNS = 3


def main(ks: list[int]) -> None:
    target = from_adapter(ADAPTER)
    print(f"{'sanitizer':<9} {'awaits':>9} {'worker s':>9} {'program s':>10} {'ratio':>6}")
    for sanitizer in SANITIZERS:
        with TargetSession(target, sanitizer, timeout_s=600, memory_mb=8192) as session, \
                tempfile.TemporaryDirectory() as tmp:
            names = session.factory_names
            for k in ks:
                s = Schedule(target.name, (make(0, arg=k), op("resume", 0)))
                worker = []
                for _ in range(RUNS):
                    outcome = session.run(s)
                    assert outcome.ok, outcome.describe(s)
                    worker.append(outcome.raw.elapsed_s)
                finding = Finding(kind="none", op_index=None, summary="bench")
                rep = reproducer.write(s, target, session.options, finding, names, Path(tmp))
                compile_line, exe = reproducer.build_line_of(rep.cpp).rsplit(" && ", 1)
                subprocess.run(["bash", "-c", compile_line], check=True)
                program = []
                for _ in range(RUNS):
                    t0 = time.perf_counter()
                    subprocess.run(["bash", "-c", f"exec {exe}"], check=True)
                    program.append(time.perf_counter() - t0)
                w, p = statistics.median(worker), statistics.median(program)
                print(f"{sanitizer:<9} {2 ** k - 1:>9} {w:>9.3f} {p:>10.3f} {w / p:>6.2f}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [14, 18])
