"""The composition libraries stand on their own: every seeded flaw shows under ASan in a
straight-line program (no driver, no Python), and its correct twin runs that program clean
and computes the right result.

Each program in tests/composition/ replays the schedule its header names as plain C++;
`-DTWIN` builds it against the correct library. The built-in targets' libraries live in
native/targets/, the fixture libraries for issue 8's acceptance points in tests/libs/
(included through their adapters, so the adapters compile here too).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stresscoro.build import native_dir

PROGRAMS = Path(__file__).parent / "composition"
EXAMPLES = Path(__file__).parent.parent / "examples"
CXX = shutil.which("g++")

# program -> what the seeded build shows: the error line ASan, LeakSanitizer, the library's
# own assertion or the program's allocation count prints, or (COMPILE, ...) the compiler's
# refusal.
COMPILE = "compile"
SEEDED = {
    "awaiter_overwritten": "AddressSanitizer: heap-use-after-free",
    "awaiter_overwritten_drops": "AddressSanitizer: heap-use-after-free",
    "eager_final_frees": "AddressSanitizer: heap-use-after-free",
    "combinator_dangling_temporaries": "AddressSanitizer: heap-use-after-free",
    "dangling_temporaries_statement": "AddressSanitizer: stack-use-after-scope",
    "resume_inside_await_suspend": "AddressSanitizer: heap-use-after-free",
    "move_assign_leaks_old": "LeakSanitizer: detected memory leaks",
    # fixture libraries (tests/libs/)
    "awaitlib_parent_destroyed": "AddressSanitizer: heap-use-after-free",
    "strictlib_preconditions": "strictlib: precondition failed: m_handle",
    "schedlib_drain": "leak: 1 block(s) allocated by the schedule never freed",
    "looplib_move_assign": "LeakSanitizer: detected memory leaks",
    "minirace_abandoned_race": "AddressSanitizer: heap-use-after-free",  # examples/minirace
    "restrictlib_await": (COMPILE, "cannot convert ‘coroutine_handle<foreign::promise_type>’"),
}

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is not installed: the standalone "
                                "composition programs cannot be compiled")


def build(tmp_path: Path, program: str, *defines: str) -> tuple[Path, subprocess.CompletedProcess]:
    exe = tmp_path / (program + "".join(d.replace("-D", "_") for d in defines))
    proc = subprocess.run(
        [CXX, "-std=c++20", "-g", "-O1", "-fsanitize=address", "-fno-omit-frame-pointer",
         "-Wall", "-Wextra", "-Werror", f"-I{native_dir() / 'targets'}",
         f"-I{native_dir() / 'include'}", f"-I{EXAMPLES / 'minirace' / 'include'}", *defines, str(PROGRAMS / f"{program}.cpp"),
         "-o", str(exe)],
        capture_output=True, text=True)
    return exe, proc


def build_and_run(tmp_path: Path, program: str, *defines: str) -> subprocess.CompletedProcess:
    exe, proc = build(tmp_path, program, *defines)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {"ASAN_OPTIONS": "detect_leaks=1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=env)


def test_every_program_here_is_checked():
    assert {p.stem for p in PROGRAMS.glob("*.cpp")} == set(SEEDED)


@pytest.mark.parametrize("program", sorted(SEEDED))
def test_seeded_library_shows_the_bug(tmp_path, program):
    expected = SEEDED[program]
    if isinstance(expected, tuple):
        _, proc = build(tmp_path, program)
        assert proc.returncode != 0, f"{program}.cpp compiled, but it must not"
        assert expected[1] in proc.stderr, proc.stderr[-3000:]
        return
    proc = build_and_run(tmp_path, program)
    assert proc.returncode != 0, proc.stdout
    assert expected in proc.stderr, proc.stderr[-3000:]
    if "Sanitizer" in expected:
        assert "ERROR: " + expected in proc.stderr


@pytest.mark.parametrize("program", sorted(SEEDED))
def test_correct_twin_runs_clean_with_the_right_result(tmp_path, program):
    proc = build_and_run(tmp_path, program, "-DTWIN")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "ERROR:" not in proc.stderr
    assert "(want " in proc.stdout  # the program checked its result and said so


# Correct libraries (twins and fixed fixtures): adapter, defines. Each must come through
# random schedules of every op its adapter declares with nothing reported and nothing left
# allocated (tests/composition/random_schedules.hpp, an independent checker).
CORRECT = [
    ("native/targets/adapters/compose-task.cpp", ()),
    ("native/targets/adapters/eager-task.cpp", ()),
    ("native/targets/adapters/shared-awaitable.cpp", ()),
    ("tests/libs/awaitlib/adapter.cpp", ("-DAWAITLIB_FIXED=1",)),
    ("tests/libs/strictlib/adapter.cpp", ()),
    ("tests/libs/schedlib/adapter.cpp", ()),
    ("tests/libs/looplib/adapter.cpp", ()),
    ("tests/libs/restrictlib/adapter.cpp", ()),
    ("examples/minirace/adapter.cpp", ("-DMINIRACE_FIXED=1",)),
]
ROOT = Path(__file__).parent.parent


def random_schedules(tmp_path: Path, adapter: str, defines: tuple[str, ...],
                     count: int) -> subprocess.CompletedProcess:
    """Build the random-schedule checker around `adapter` and run `count` schedules."""
    main = tmp_path / "main.cpp"
    main.write_text(f'#include "{ROOT / adapter}"\n#include "{PROGRAMS / "random_schedules.hpp"}"\n')
    exe = tmp_path / "random"
    subprocess.run([CXX, "-std=c++20", "-g", "-O1", "-fsanitize=address", "-fno-omit-frame-pointer",
                    f"-I{native_dir() / 'include'}", f"-I{EXAMPLES / 'minirace' / 'include'}",
                    *defines, str(main), "-o", str(exe)], check=True, capture_output=True, text=True)
    return subprocess.run([str(exe), str(count)], capture_output=True, text=True, timeout=600,
                          env={"ASAN_OPTIONS": "detect_leaks=0", "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
@pytest.mark.parametrize("adapter,defines", CORRECT, ids=[a.split("/")[-2] if "libs" in a or
                                                          "examples" in a else a.split("/")[-1][:-4]
                                                          for a, _ in CORRECT])
def test_correct_library_survives_5000_random_schedules(tmp_path, adapter, defines):
    proc = random_schedules(tmp_path, adapter, defines, 5000)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "clean: 5000 schedules" in proc.stdout


def test_random_checker_finds_a_seeded_bug(tmp_path):
    """The checker is not vacuous: the seeded move-assignment leak fails it."""
    proc = random_schedules(tmp_path, "tests/libs/looplib/adapter.cpp", ("-DLOOPLIB_SEEDED=1",), 2000)
    assert proc.returncode == 1 and "leak:" in proc.stdout and "move_assign" in proc.stdout
