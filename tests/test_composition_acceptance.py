"""Issue 8's acceptance campaigns: the built-in composition classes and the fixture
libraries under tests/libs, searched by real campaigns. Slow: each runs hundreds to
thousands of sanitized schedules (`pytest -m slow` picks them; CI's command runs all)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stresscoro import targets
from stresscoro.runner import COMPOSITION_BUDGET_FACTOR, PROFILES, run_campaign

TESTS = Path(__file__).resolve().parent
LIBS = TESTS / "libs"
pytestmark = pytest.mark.slow

# Seeded composition target -> its minimal length (DESIGN.md's table; bench/minimal.py
# proves each by exhaustive enumeration).
MINIMAL = {"overwritten-awaiter-task": 3, "eager-frees-task": 2, "dangling-when-all-task": 4,
           "inline-resume-when-all-task": 5, "move-assign-leak-task": 3}
TWINS = ("compose-task", "eager-task", "shared-awaitable")
CLEAN_EXAMPLES = 5000


def lib(name: str, *defines: str) -> targets.Target:
    return targets.from_adapter(LIBS / name / "adapter.cpp", include_dirs=(str(LIBS / name),),
                                defines=defines)


def _found(result, kind):
    return [b for b in result.findings if b.finding.kind == kind]


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_seeded_composition_class_found_at_the_default_budget_minimal_and_verified(name, tmp_path):
    t = targets.get(name)
    result = run_campaign(t, t.sanitizers[0], seed=1, database=None, out_dir=tmp_path)
    assert result.examples <= PROFILES["dev"].max_examples * COMPOSITION_BUDGET_FACTOR
    mine = _found(result, t.expected)
    assert mine, [(b.finding.kind, b.schedule.render()) for b in result.findings]
    shortest = min(mine, key=lambda b: len(b.schedule.ops))
    assert len(shortest.schedule.ops) == MINIMAL[name], shortest.schedule.render()
    assert shortest.reproducer.verified, shortest.reproducer.notes


@pytest.mark.parametrize("name", TWINS)
def test_composition_twin_is_clean_over_5000_examples(name):
    t = targets.get(name)
    result = run_campaign(t, "asan", seed=1, database=None, max_examples=CLEAN_EXAMPLES,
                          verify=False)
    assert result.findings == [], [(b.finding.kind, b.schedule.render()) for b in result.findings]
    assert result.examples == CLEAN_EXAMPLES


def test_a_task_awaiting_a_task_outside_the_repository(tmp_path):
    """A user's library copied outside the repository: the await is declared as a
    combinator, no factory body holds a trigger, and the campaign finds a destroyed
    parent whose continuation stays in the child; the fixed library is clean."""
    work = tmp_path / "mylib"
    work.mkdir()
    shutil.copy(LIBS / "awaitlib" / "awaitlib.hpp", work)
    adapter = (LIBS / "awaitlib" / "adapter.cpp").read_text()
    assert "combinators[]" in adapter and "pass::copy" in adapter
    (work / "adapter.cpp").write_text(adapter)

    def fuzz(*extra: str) -> tuple[int, dict]:
        report = tmp_path / f"report{len(extra)}.json"
        proc = subprocess.run([sys.executable, "-m", "stresscoro.cli", "fuzz", "--adapter",
                               "adapter.cpp", "-I", ".", "--seed", "1", "--max-examples", "4000",
                               "--json", str(report), "--out", str(tmp_path / "out"), *extra],
                              cwd=work, capture_output=True, text=True, timeout=1200)
        return proc.returncode, json.loads(report.read_text())

    code, report = fuzz()
    assert code == 1, report
    found = report["results"][0]["findings"]
    uaf = [f for f in found if f["kind"] == "heap-use-after-free"]
    assert uaf, found
    ops = [o["op"] for o in min(uaf, key=lambda f: f["length"])["ops"]]
    assert "make_from" in ops  # the parent is the combinator's result; no factory holds a trigger
    code, report = fuzz("--define", "AWAITLIB_FIXED=1")
    assert code == 0, report["results"][0]["findings"]


def test_strictlib_is_clean_over_5000_examples_under_its_preconditions():
    result = run_campaign(lib("strictlib"), "asan", seed=1, database=None,
                          max_examples=CLEAN_EXAMPLES, verify=False)
    assert result.findings == [], [(b.finding.kind, b.schedule.render()) for b in result.findings]
    assert result.examples == CLEAN_EXAMPLES


def test_scheduler_frames_are_clean_when_drained_and_leak_without_the_drain(tmp_path):
    drained = run_campaign(lib("schedlib"), "asan", seed=1, database=None, verify=False)
    assert drained.findings == [], [(b.finding.kind, b.schedule.render()) for b in drained.findings]
    undrained = run_campaign(lib("schedlib", "SCHEDLIB_NO_DRAIN=1"), "asan", seed=1,
                             database=None, out_dir=tmp_path)
    leaks = _found(undrained, "leak")
    assert leaks and min(len(b.schedule.ops) for b in leaks) == 2
    assert any("spawn" in line for b in leaks for line in b.schedule.render())


def test_execution_context_per_schedule_correct_and_seeded(tmp_path):
    correct = run_campaign(lib("looplib"), "asan", seed=1, database=None,
                           max_examples=CLEAN_EXAMPLES, verify=False)
    assert correct.findings == [], [(b.finding.kind, b.schedule.render()) for b in correct.findings]
    seeded = run_campaign(lib("looplib", "LOOPLIB_SEEDED=1"), "asan", seed=1, database=None,
                          out_dir=tmp_path)
    leaks = _found(seeded, "leak")
    assert leaks
    best = min(leaks, key=lambda b: len(b.schedule.ops))
    assert [o.name for o in best.schedule.ops] == ["make", "make", "move_assign"]
    assert best.reproducer.verified, best.reproducer.notes


def test_restricted_co_await_runs_with_one_note(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "stresscoro.cli", "fuzz", "--adapter",
                           str(LIBS / "restrictlib" / "adapter.cpp"), "-I",
                           str(LIBS / "restrictlib"), "--seed", "1", "--max-examples", "200",
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "left out: op probe" in line]
    assert len(notes) == 1, proc.stdout
    assert "compiler said:" in notes[0]
