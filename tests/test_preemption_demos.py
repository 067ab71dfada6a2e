"""The threaded classes of issue 17 stand on their own: each seeded flaw of
native/targets/async_task.hpp shows in a straight-line program on two std::threads whose
bad interleaving is forced by hand (tests/preemption/gate.hpp holds thread A at the
library's STRESSCORO_TARGETS_HOOK point until thread B has run), and the correct twin
(-DTWIN) runs the same program clean with the right result.

Each program replays the schedule its header names, with the preemption that the
schedule file tests/schedules/<target>.json records.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stresscoro.build import native_dir

PROGRAMS = Path(__file__).parent / "preemption"
CXX = shutil.which("g++")

# program -> (the sanitizer's error line in the seeded build, the hook point thread A stops at)
SEEDED = {
    "check_then_act_release": ("LeakSanitizer: detected memory leaks", "release_checked"),
    "lost_wakeup": ("LeakSanitizer: detected memory leaks", "await_suspend"),
    "when_all_counter": ("AddressSanitizer: heap-use-after-free", "when_all_counted"),
}

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is not installed: the standalone "
                                "preemption programs cannot be compiled")


def build_and_run(tmp_path: Path, program: str, *defines: str) -> subprocess.CompletedProcess:
    exe = tmp_path / (program + "".join(d.replace("-D", "_") for d in defines))
    proc = subprocess.run(
        [CXX, "-std=c++20", "-g", "-O1", "-pthread", "-fsanitize=address", "-fno-omit-frame-pointer",
         "-Wall", "-Wextra", "-Werror", f"-I{native_dir() / 'targets'}", *defines,
         str(PROGRAMS / f"{program}.cpp"), "-o", str(exe)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {"ASAN_OPTIONS": "detect_leaks=1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=env)


def test_every_program_here_is_checked():
    assert {p.stem for p in PROGRAMS.glob("*.cpp")} == set(SEEDED)


@pytest.mark.parametrize("program", sorted(SEEDED))
def test_seeded_library_shows_the_bug_when_the_gap_is_forced(tmp_path, program):
    error, point = SEEDED[program]
    proc = build_and_run(tmp_path, program)
    assert proc.returncode != 0, proc.stdout
    assert "ERROR: " + error in proc.stderr, proc.stderr[-3000:]
    assert f"thread A stopped at {point} until thread B ran" in proc.stdout, proc.stdout


@pytest.mark.parametrize("program", sorted(SEEDED))
def test_correct_twin_runs_the_same_interleaving_clean(tmp_path, program):
    proc = build_and_run(tmp_path, program, "-DTWIN")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "ERROR:" not in proc.stderr
    assert "(want " in proc.stdout
