"""A bounded HypoFuzz run on one seeded target writes its failure to a shared example
database, and the pytest plugin then replays it first.

Run by hand: python bench/hypofuzz_shared.py [SECONDS]. Needs HypoFuzz (`hypothesis fuzz`)
in the same environment as stresscoro; prints what it did and exits 1 if a step fails,
2 if HypoFuzz is missing or cannot run here (the message says why).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "data" / "ci_project"
CONFTEST = '''
import os

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

# HypoFuzz fuzzes with Hypothesis's default database: make it the shared one.
settings.register_profile("shared", database=DirectoryBasedExampleDatabase(os.environ["SHARED_DB"]))
settings.load_profile("shared")
'''


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    fuzz = shutil.which("hypothesis", path=str(Path(sys.executable).parent))
    try:
        import hypofuzz  # noqa: F401
    except ImportError:
        print("hypofuzz is not installed in this environment: pip install hypofuzz", file=sys.stderr)
        return 2
    import hypothesis

    work = Path(tempfile.mkdtemp(prefix="stresscoro-hypofuzz-"))
    proj, db = work / "proj", work / "shared-db"
    shutil.copytree(PROJECT, proj)
    (proj / "conftest.py").write_text(CONFTEST)
    env = dict(os.environ, SHARED_DB=str(db))
    print(f"hypothesis {hypothesis.__version__}, hypofuzz {hypofuzz.__version__}; work dir {work}")
    t0 = time.perf_counter()
    run = subprocess.Popen([fuzz, "fuzz", "-n", "1", "--no-dashboard", "--", "test_fuzz.py", "-k", "buggy"],
                           cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    try:
        out, _ = run.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGINT)
        out, _ = run.communicate(timeout=60)
    elapsed = time.perf_counter() - t0
    saved = [p for p in db.rglob("*") if p.is_file()] if db.exists() else []
    print(f"hypothesis fuzz ran {elapsed:.0f} s, exit {run.returncode}; {len(saved)} file(s) in the shared database")
    if "AttributeError" in out:
        print("HypoFuzz failed inside itself (a Hypothesis version it does not support?):", file=sys.stderr)
        print("\n".join(line for line in out.splitlines() if "Error" in line), file=sys.stderr)
    found = "Found a failing input" in out
    print(f"HypoFuzz reports a failing input: {found}")
    replay = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-k", "buggy",
                             "--stresscoro-max-examples=5", f"--stresscoro-database={db}"],
                            cwd=proj, env=env, capture_output=True, text=True)
    first = re.findall(r"^first seen at example (\d+)$", replay.stdout, re.M)
    print(f"plugin run on the shared database: findings first seen at examples {first}")
    ok = found and saved and first[:1] == ["1"]
    print("OK: HypoFuzz's failure was replayed first" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
