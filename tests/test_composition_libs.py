"""The composition libraries stand on their own: every seeded flaw shows under ASan in a
straight-line program (no driver, no Python), and its correct twin runs that program clean
and computes the right result.

Each program in tests/composition/ replays the minimal schedule its header names as plain
C++; `-DTWIN` builds it against the correct library.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stresscoro.build import native_dir

PROGRAMS = Path(__file__).parent / "composition"
CXX = shutil.which("g++")

# program -> the first line ASan (or LeakSanitizer) prints for the seeded build
SEEDED = {
    "awaiter_overwritten": "AddressSanitizer: heap-use-after-free",
    "awaiter_overwritten_drops": "AddressSanitizer: heap-use-after-free",
    "eager_final_frees": "AddressSanitizer: heap-use-after-free",
    "combinator_dangling_temporaries": "AddressSanitizer: heap-use-after-free",
    "dangling_temporaries_statement": "AddressSanitizer: stack-use-after-scope",
    "resume_inside_await_suspend": "AddressSanitizer: heap-use-after-free",
    "move_assign_leaks_old": "LeakSanitizer: detected memory leaks",
}

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is not installed: the standalone "
                                "composition programs cannot be compiled")


def build_and_run(tmp_path: Path, program: str, *defines: str) -> subprocess.CompletedProcess:
    exe = tmp_path / (program + "".join(d.replace("-D", "_") for d in defines))
    subprocess.run([CXX, "-std=c++20", "-g", "-O1", "-fsanitize=address", "-fno-omit-frame-pointer",
                    "-Wall", "-Wextra", "-Werror", f"-I{native_dir() / 'targets'}", *defines,
                    str(PROGRAMS / f"{program}.cpp"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    env = {"ASAN_OPTIONS": "detect_leaks=1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=env)


def test_every_program_here_is_checked():
    assert {p.stem for p in PROGRAMS.glob("*.cpp")} == set(SEEDED)


@pytest.mark.parametrize("program", sorted(SEEDED))
def test_seeded_library_shows_the_bug_under_asan(tmp_path, program):
    proc = build_and_run(tmp_path, program)
    assert proc.returncode != 0, proc.stdout
    assert "ERROR: " + SEEDED[program] in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("program", sorted(SEEDED))
def test_correct_twin_runs_clean_with_the_right_result(tmp_path, program):
    proc = build_and_run(tmp_path, program, "-DTWIN")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "ERROR:" not in proc.stderr
    assert "(want " in proc.stdout  # the program checked its result and said so
