"""Crash signatures against ClusterFuzz's stack parser and crash comparer, on reports of
the two bugs of examples/twobugs built three ways. Run by hand:

    .venv/bin/python bench/signatures.py [--clusterfuzz /path/to/venv/bin/python]

Reports: each bug's C++ reproducer as `fuzz` writes it (-O1), rebuilt at -O2 in another
directory, and that -O2 report with a timestamped prefix on every line. Pairs of reports
of one bug should match, pairs of the two bugs should not. `--clusterfuzz` names a Python
that has the `clusterfuzz` package (kept out of stresscoro's own environment: see the
figures it prints); the same reports then go through its StackParser and CrashComparer.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from crash_reports import report_built_elsewhere, reproducer_for, timestamp  # noqa: E402

from stresscoro import reproducer, signature, targets  # noqa: E402
from stresscoro.schedule import Schedule, make, op  # noqa: E402

BUGS = {"sharing-copy": (make(0), op("copy", 0, 1)), "final-frees": (make(0), op("resume", 0))}

CLUSTERFUZZ_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from clusterfuzz.stacktraces import StackParser
from clusterfuzz.stacktraces.crash_comparer import CrashComparer
imported = time.perf_counter() - t0
reports = json.load(sys.stdin)
parser = StackParser(symbolized=True)
states = {}
for name, text in reports.items():
    states[name] = parser.parse(text).crash_state
pairs = {f"{a}|{b}": bool(CrashComparer(states[a], states[b]).is_similar())
         for a in states for b in states if a < b}
print(json.dumps({"import_s": imported, "states": states, "pairs": pairs}))
"""


def make_reports(work: Path) -> dict[str, str]:
    target = targets.from_adapter(ROOT / "examples/twobugs/adapter.cpp",
                                  include_dirs=(str(ROOT / "examples/twobugs/include"),))
    env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS") and k != "LD_PRELOAD"}
    out = {}
    for bug, ops in BUGS.items():
        cpp = reproducer_for(Schedule(target.name, ops), target, "asan", work / bug)
        out[f"{bug}/O1"] = subprocess.run(["bash", "-c", reproducer.build_line_of(cpp)],
                                          capture_output=True, text=True, env=env).stderr
        o2 = report_built_elsewhere(cpp, work / f"{bug}-elsewhere", "asan")
        out[f"{bug}/O2"] = o2
        out[f"{bug}/O2+prefix"] = "".join(f"{timestamp(i)} ci[42]: {line}\n"
                                          for i, line in enumerate(o2.splitlines()))
    return out


def score(pairs: dict[str, bool]) -> str:
    same = {k: v for k, v in pairs.items() if k.split("/")[0] == k.split("|")[1].split("/")[0]}
    other = {k: v for k, v in pairs.items() if k not in same}
    return (f"same-bug pairs matched {sum(same.values())}/{len(same)}, "
            f"two-bug pairs matched {sum(other.values())}/{len(other)} (should be 0)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clusterfuzz", metavar="PYTHON", help="a Python with the clusterfuzz package")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reports = make_reports(Path(tmp))
    t0 = time.perf_counter()
    sigs = {name: signature.parse(text) for name, text in reports.items()}
    parse_ms = (time.perf_counter() - t0) * 1000 / len(reports)
    ours = {f"{a}|{b}": signature.matches(sigs[a], sigs[b])
            for a, b in itertools.combinations(sorted(reports), 2)}
    print(f"stresscoro.signature: {parse_ms:.1f} ms a report; {score(ours)}")
    for name, s in sigs.items():
        print(f"    {name:<22} {s.fingerprint()}")
    if args.clusterfuzz:
        proc = subprocess.run([args.clusterfuzz, "-c", CLUSTERFUZZ_CHILD], input=json.dumps(reports),
                              capture_output=True, text=True, check=True)
        cf = json.loads(proc.stdout)
        print(f"clusterfuzz: import {cf['import_s']:.2f} s; {score(cf['pairs'])}")
        for name, state in cf["states"].items():
            print(f"    {name:<22} {state.strip()!r}")
        for pair, similar in sorted(cf["pairs"].items()):
            if similar != ours[pair]:
                print(f"    disagree on {pair}: clusterfuzz {similar}, stresscoro {ours[pair]}")


if __name__ == "__main__":
    main()
