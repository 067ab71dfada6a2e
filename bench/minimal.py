"""Proves a seeded composition target's minimal schedule length by exhaustive
enumeration: every schedule shorter than the claimed length that the strategies could
generate (same legality model and declared preconditions; slots up to renaming;
integer arguments from {min, min + 1, max}) runs clean of the expected finding kind,
and some schedule of the claimed length shows it. Run by hand:

    .venv/bin/python bench/minimal.py [NAME ...]

With no NAME, every seeded target whose bug class is a composition class.
"""

from __future__ import annotations

import sys
import time

from stresscoro import targets
from stresscoro.session import TargetSession
from stresscoro.strategies import enumerate_schedules

COMPOSITION = ("awaiter-overwritten", "eager-final-frees", "combinator-dangling-temporaries",
               "resume-inside-await-suspend", "move-assign-leaks-old")
# The minimal lengths DESIGN.md's table states.
CLAIMED = {"awaiter-overwritten": 3, "eager-final-frees": 2, "combinator-dangling-temporaries": 4,
           "resume-inside-await-suspend": 5, "move-assign-leaks-old": 3}


def prove(t: targets.Target) -> bool:
    claimed = CLAIMED[t.bug_class]
    with TargetSession(t, t.sanitizers[0]) as session:
        spec = dict(rules=session.rules, combinators=session.combinators,
                    custom_ops=session.custom_ops)
        caps = session.capabilities - {"await"}  # replayed from version 1 files, not generated
        for length in range(1, claimed + 1):
            t0, runs, hit = time.perf_counter(), 0, None
            for s in enumerate_schedules(t.name, caps, session.factories, length, **spec):
                runs += 1
                if any(f.kind == t.expected for f in session.run(s).findings):
                    hit = s
                    break
            took = time.perf_counter() - t0
            if length < claimed and hit is not None:
                print(f"{t.name}: DISPROVED, length {length} shows {t.expected}: "
                      f"{hit.render(session.factory_names)}")
                return False
            if length < claimed:
                print(f"{t.name}: length {length}: {runs} schedules, none shows {t.expected} "
                      f"({took:.0f} s)")
            elif hit is None:
                print(f"{t.name}: NOT SHOWN at length {length} ({runs} schedules)")
                return False
            else:
                print(f"{t.name}: length {length} shows {t.expected} after {runs} schedules: "
                      f"{hit.render(session.factory_names)}")
    return True


def main() -> int:
    names = sys.argv[1:] or [t.name for t in targets.builtin_targets()
                             if t.bug_class in COMPOSITION]
    ok = all([prove(targets.get(n)) for n in names])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
