"""Per bug class: examples to the first failure and seconds to the minimal reproducer,
over several seeds (median and worst). Run by hand:

    .venv/bin/python bench/seeds.py [--seeds 1 2 3 4 5] [--jobs 2] [--targets NAME ...]

The budget is the dev profile's, as `stresscoro fuzz` uses it (a target that declares
combinators gets COMPOSITION_BUDGET_FACTOR times as many examples).

Each seeded built-in target runs one campaign per seed under its detector sanitizer,
with no example database (so every seed searches from scratch) and no reproducer
verification (timed separately by `stresscoro fuzz`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import statistics
import tempfile
from pathlib import Path

from stresscoro import targets
from stresscoro.runner import run_campaign


def one(name: str, sanitizer: str, seed: int) -> tuple[str, int, dict]:
    t = targets.get(name)
    with tempfile.TemporaryDirectory() as out:
        r = run_campaign(t, sanitizer, seed=seed, database=None, out_dir=Path(out), verify=False)
    hits = [b for b in r.findings if b.finding.kind == t.expected]
    if not hits:
        return name, seed, {"found": False, "examples": r.examples}
    best = min(hits, key=lambda b: len(b.schedule.ops))
    return name, seed, {"found": True, "first": min(b.first_example for b in hits),
                        "seconds": best.minimal_s, "length": len(best.schedule.ops),
                        "campaign_s": r.elapsed_s}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--targets", nargs="+", default=None,
                   help="only these seeded targets (default: every seeded built-in target)")
    args = p.parse_args()
    seeded = [t for t in targets.builtin_targets() if t.bug_class
              and (args.targets is None or t.name in args.targets)]
    jobs = [(t.name, t.sanitizers[0], s) for t in seeded for s in args.seeds]
    results: dict[str, list[dict]] = {t.name: [] for t in seeded}
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        for name, _seed, res in pool.map(one, *zip(*jobs)):
            results[name].append(res)
    print(f"{'bug class':<22} {'target':<24} found  first-failure (median/worst)  "
          f"seconds-to-minimal (median/worst)  minimal length")
    for t in seeded:
        rs = results[t.name]
        ok = [r for r in rs if r["found"]]
        firsts = [r["first"] for r in ok]
        secs = [r["seconds"] for r in ok]
        lengths = sorted({r["length"] for r in ok})
        if ok:
            print(f"{t.bug_class:<22} {t.name:<24} {len(ok)}/{len(rs)}   "
                  f"{statistics.median(firsts):>6.0f} / {max(firsts):<6}            "
                  f"{statistics.median(secs):>6.1f} / {max(secs):<6.1f}                  {lengths}")
        else:
            print(f"{t.bug_class:<22} {t.name:<24} 0/{len(rs)}")


if __name__ == "__main__":
    main()
