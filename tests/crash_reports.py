"""Sanitizer reports of the seeded bugs, made the way a user's would be: the verified C++
reproducer of a minimal schedule, built another way (another directory, -O2, another
binary), run, and its stderr written to a log with a prefix on every line."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from stresscoro import reproducer
from stresscoro.schedule import Schedule
from stresscoro.session import TargetSession
from stresscoro.targets import Target

# GCC 12's TSan misses the relaxed refcount race at -O2 (DESIGN.md): its report is
# built at -O1, still in another directory and with another binary name.
OPT_FOR = {"tsan": "-O1"}


def reproducer_for(schedule: Schedule, target: Target, sanitizer: str, out: Path) -> Path:
    """The C++ reproducer `fuzz` would write for `schedule` (the finding comes from a run)."""
    with TargetSession(target, sanitizer) as session:
        finding = session.run(schedule).primary
        assert finding is not None, f"{target.name}: {schedule.render()} finds nothing"
        rep = reproducer.write(schedule, target, session.options, finding, session.factory_names, out)
    return rep.cpp


def report_built_elsewhere(cpp: Path, workdir: Path, sanitizer: str, prefix: str = "") -> str:
    """Run `cpp` after rebuilding it from another directory at another optimisation
    level; its stderr, each line led by `prefix` with a growing timestamp."""
    line = reproducer.build_line_of(cpp)
    words = shlex.split(line.split(" && ")[0])
    elsewhere = workdir / "nightly-build" / "src"
    elsewhere.mkdir(parents=True, exist_ok=True)
    moved = elsewhere / "crash_case.cpp"
    shutil.copy(cpp, moved)
    exe = workdir / "nightly-build" / "bin-crash"
    opt = OPT_FOR.get(sanitizer, "-O2")
    words = [opt if re.fullmatch(r"-O\d", w) else w for w in words]
    words = [str(moved) if w == str(cpp) else w for w in words]
    words[words.index("-o") + 1] = str(exe)
    subprocess.run(words, check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS") and k != "LD_PRELOAD"}
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0, f"{cpp.name} at {opt} ran clean: {proc.stderr[-500:]}"
    if not prefix:
        return proc.stderr
    return "".join(f"{timestamp(i)} {prefix}{l}\n" for i, l in enumerate(proc.stderr.splitlines()))


def timestamp(i: int) -> str:
    """The time of log line `i`: 37 ms apart, so that every field rolls over."""
    ms = 59_900_000 + 37 * i
    return f"2026-11-30T23:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
