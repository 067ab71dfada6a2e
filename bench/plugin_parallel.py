"""The built-in suite through the pytest plugin under `-n 2` versus `-n 1`: wall time and
their ratio (goal: at least 1.8 on two cores).

Run by hand: python bench/plugin_parallel.py [MAX_EXAMPLES] [WORKERS...]. Builds are
cached first, so both runs time the campaigns only. Prints the machine's load average
before and after each run: other work on the machine shows up in the ratio.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = '''
from stresscoro import targets
from stresscoro.pytest_plugin import fuzz_tests

for _t in targets.builtin_targets():
    globals()["test_" + _t.name.replace("-", "_")] = fuzz_tests(_t.name)
'''


def run(proj: Path, workers: int, examples: int) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
                           f"--stresscoro-max-examples={examples}", "--stresscoro-seed=1",
                           "--stresscoro-database=none", f"--stresscoro-out={proj / f'out-{workers}'}"],
                          cwd=proj, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return wall, tail


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    counts = [int(a) for a in sys.argv[2:]] or [1, 2]
    proj = Path(tempfile.mkdtemp(prefix="stresscoro-bench-plugin-"))
    (proj / "test_builtin.py").write_text(SUITE)
    print(f"warming the build cache ({examples} examples a campaign)...", flush=True)
    run(proj, 2, 1)
    walls = {}
    for n in counts:
        before = os.getloadavg()[0]
        walls[n], tail = run(proj, n, examples)
        after = os.getloadavg()[0]
        print(f"-n {n}: {walls[n]:.1f} s wall ({tail}); load average {before:.1f} before, {after:.1f} after",
              flush=True)
    if 1 in walls and 2 in walls:
        print(f"ratio -n 1 / -n 2: {walls[1] / walls[2]:.2f} (goal >= 1.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
