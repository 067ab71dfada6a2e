"""`stresscoro explore`: the native engine finds seeded classes, hands the exact schedule
in flight back from a crashed or stopped batch, shrinks it to the minimal schedule and
reports it as `fuzz` does (same JSON, verified reproducers); correct twins stay clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stresscoro import cli, schedule as sched, targets
from stresscoro.explore import NativeProgram, explore_batches
from stresscoro.oracle import Finding
from stresscoro.runner import FoundBug

from conftest import SCHEDULES

# What `fuzz --json` writes for a finding.
FINDING_KEYS = set(FoundBug(Finding("leak", 0, ""), sched.Schedule("t", (sched.make(0),)), 1, 0.0,
                            0.0).to_json())


def _explore(tmp_path, *args: str) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    code = cli.main(["explore", *args, "--out", str(tmp_path / "out"), "--json", str(report)])
    return code, json.loads(report.read_text())


def test_a_crash_hands_back_the_exact_schedule_in_flight():
    program = NativeProgram(targets.get("copyable-task"), "asan")
    seen = explore_batches(program, schedules=500, max_findings=2)
    assert len(seen.stops) == 2
    for s, _ in seen.stops:
        # The schedule read back from shared memory is one the generator drew, and it crashes.
        assert {"copy", "copy_assign"} & {o.name for o in s.ops}, s.render()


def test_explore_reports_a_seeded_class_as_fuzz_does(tmp_path):
    code, doc = _explore(tmp_path, "copyable-task", "--schedules", "2000")
    assert code == 1
    (result,) = doc["results"]
    assert result["verdict"] == "findings" and result["as_expected"]
    (finding,) = result["findings"]
    assert set(finding) == FINDING_KEYS
    assert finding["kind"] == "heap-use-after-free" and finding["length"] == 2
    assert finding["reproducer"]["verified"] is True
    assert finding["preconditions"]  # the task's rules forbid some things, as fuzz says
    assert doc["summary"]["bug_classes_found"] == ["copy-owning-task"]
    assert doc["summary"]["reproducers_verified"] == 1


def test_a_correct_twin_stays_clean_over_native_schedules(tmp_path):
    code, doc = _explore(tmp_path, "task", "--sanitizer", "asan", "--schedules", "20000",
                         "--max-ops", "30")
    assert code == 0
    (result,) = doc["results"]
    assert result["verdict"] == "clean" and result["examples"] == 20000


SEEDED = [t for t in targets.builtin_targets() if t.bug_class]


@pytest.mark.slow
@pytest.mark.parametrize("target", SEEDED, ids=lambda t: t.name)
def test_explore_finds_and_shrinks_every_seeded_class(tmp_path, target):
    sanitizer = "tsan" if target.expected == "data-race" else "asan"
    code, doc = _explore(tmp_path, target.name, "--sanitizer", sanitizer,
                         "--schedules", "200000", "--seed", "1")
    assert code == 1
    (result,) = doc["results"]
    assert result["as_expected"], result
    minimal = len(sched.load(str(SCHEDULES / f"{target.name}.json")).ops)
    expected = [f for f in result["findings"] if f["kind"] == target.expected]
    assert min(f["length"] for f in expected) <= minimal
    assert all(f["reproducer"]["verified"] for f in expected)


@pytest.mark.slow
def test_crashes_and_hangs_in_a_batch_come_back_as_findings(tmp_path):
    """A batch that segfaults, aborts or spins forever is replaced; each schedule in
    flight comes back, is classified by a worker and shrunk (tests/adapters/misbehave.cpp)."""
    adapter = str(Path(__file__).parent / "adapters" / "misbehave.cpp")
    code, doc = _explore(tmp_path, "--adapter", adapter, "--sanitizer", "asan", "--timeout", "1",
                         "--memory-mb", "300", "--no-verify")
    assert code == 1
    (result,) = doc["results"]
    kinds = {f["kind"] for f in result["findings"]}
    assert "hang" in kinds and "crash:SIGSEGV" in kinds, kinds
    assert kinds <= {"hang", "crash:SIGSEGV", "crash:SIGABRT", "out-of-memory"}, kinds
    assert all(f["length"] == 2 for f in result["findings"])  # make, resume
