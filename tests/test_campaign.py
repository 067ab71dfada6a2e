"""Hypothesis campaigns end to end: minimal findings, distinct findings, reproducers that
compile and fail on their own, the example database replaying a failure first, the
`fuzz` command's output contract, and the schedule strategies themselves."""

from __future__ import annotations

import ast
import json
import multiprocessing
import os
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase

import stresscoro.strategies as strategies_pkg
from stresscoro import targets
from stresscoro.runner import CampaignResult, run_campaign
from stresscoro.schedule import OPS, InvalidSchedule, Schedule, Signature, make, op
from stresscoro.strategies import OP_ORDER, schedules

# Seeded target -> its minimal schedule's op names (DESIGN.md's bug-class table; the
# end-of-schedule drops are free).
# Each seeded target's minimal schedules by op names: any one of them is the minimum.
MINIMAL = {
    "copyable-task": [["make", "copy"]],
    "leaky-task": [["make"]],
    "self-assign-shared-task": [["make", "copy_assign"]],
    # A probe awaiting the chain resumes it just as a resume does: both overflow in 2 ops.
    "nested-chain-task": [["make", "resume"], ["make", "probe"]],
}
# Seeded, but checked by length only: a self-swap is as short as a move and shows the
# same flaw (std::swap move-constructs from its first argument).
MINIMAL_LENGTH_ONLY = {"move-keeps-source-task": 2}
CORRECT = ("task", "shared-task")
CORRECT_EXAMPLES = 300
# What the standalone C++ program prints, per seeded target.
CPP_ERROR = {
    "copyable-task": "ERROR: AddressSanitizer: heap-use-after-free",
    "leaky-task": "ERROR: LeakSanitizer: detected memory leaks",
}


# -- one campaign per target, run once for the module ----------------------------------

# Every campaign this module asserts on: target -> max_examples (None: the dev profile's).
# The most expensive one (copyable-task: several findings to shrink and verify) first.
CAMPAIGNS = {"copyable-task": None, "nested-chain-task": None, "self-assign-shared-task": None,
             "leaky-task": None, "move-keeps-source-task": None,
             **{name: CORRECT_EXAMPLES for name in CORRECT}}


class _Campaigns:
    """campaigns(name) -> the CampaignResult of `name` under asan, seed 1, no database.

    Run alone, the module starts every campaign at once, two at a time in spawned
    processes (as `stresscoro fuzz --jobs 2` does); under pytest-xdist each worker runs
    only the campaigns its own tests ask for, in-process."""

    def __init__(self, tmp_path_factory, parallel: bool) -> None:
        self._tmp = tmp_path_factory
        self._results: dict[str, CampaignResult] = {}
        self._futures = {}
        self._pool = None
        if parallel:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(min(2, os.cpu_count() or 1), mp_context=ctx)
            self._futures = {name: self._pool.submit(run_campaign, *self._args(name), **self._kw(name))
                             for name in CAMPAIGNS}

    def _args(self, name: str):
        return targets.get(name), "asan"

    def _kw(self, name: str) -> dict:
        return dict(seed=1, database=None, max_examples=CAMPAIGNS[name],
                    out_dir=self._tmp.mktemp(f"out-{name}"))

    def __call__(self, name: str) -> CampaignResult:
        if name not in self._results:
            fut = self._futures.get(name)
            self._results[name] = (fut.result() if fut is not None
                                   else run_campaign(*self._args(name), **self._kw(name)))
        return self._results[name]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory):
    runner = _Campaigns(tmp_path_factory, parallel="PYTEST_XDIST_WORKER" not in os.environ)
    yield runner
    runner.close()


def _readable(result: CampaignResult) -> str:
    lines = [f"{result.target.name}/{result.sanitizer}: {result.verdict}, "
             f"{result.examples} examples"]
    for b in result.findings:
        lines.append(f"  {b.finding.kind} at {b.finding.location!r}: {b.schedule.render()}")
        if b.reproducer is not None:
            lines.append(f"    verified={b.reproducer.verified} notes={b.reproducer.notes}")
    return "\n".join(lines)


def _of_kind(result: CampaignResult, kind: str):
    return [b for b in result.findings if b.finding.kind == kind]


# -- 1. seeded bugs are found, minimal and verified; correct twins stay clean ------------

@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_seeded_bug_is_found_at_its_minimal_length_and_verified(campaigns, name):
    result = campaigns(name)
    expected = result.target.expected
    assert expected not in ("clean", "unverifiable")
    assert result.verdict == "findings" and result.as_expected, _readable(result)
    mine = _of_kind(result, expected)
    assert mine, _readable(result)
    shortest = min(mine, key=lambda b: len(b.schedule.ops))
    assert [o.name for o in shortest.schedule.ops] in MINIMAL[name], _readable(result)
    if name == "self-assign-shared-task":
        src, dst = shortest.schedule.ops[1].args
        assert src == dst, _readable(result)  # a = a
    for b in result.findings:
        assert b.reproducer is not None, _readable(result)
        assert b.reproducer.verified, _readable(result)
        assert b.reproducer.cpp_kind == b.finding.kind == b.reproducer.python_kind


@pytest.mark.parametrize("name", sorted(MINIMAL_LENGTH_ONLY))
def test_seeded_bug_is_found_at_its_minimal_length(campaigns, name):
    result = campaigns(name)
    mine = _of_kind(result, result.target.expected)
    assert mine, _readable(result)
    assert min(len(b.schedule.ops) for b in mine) == MINIMAL_LENGTH_ONLY[name], _readable(result)
    assert all(b.reproducer is not None and b.reproducer.verified for b in result.findings), \
        _readable(result)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_twin_stays_clean(campaigns, name):
    result = campaigns(name)
    assert result.target.expected == "clean"
    assert result.findings == [], _readable(result)
    assert result.verdict == "clean" and result.as_expected
    assert result.examples >= CORRECT_EXAMPLES  # the whole budget really ran


# -- 2. distinct findings are reported, shrunk and written distinctly --------------------

def test_distinct_findings_are_reported_and_shrunk_separately(campaigns, sessions):
    result = campaigns("copyable-task")
    bugs = result.findings
    assert len(bugs) > 1, _readable(result)
    signatures = [b.finding.signature for b in bugs]
    assert len(set(signatures)) == len(signatures), _readable(result)
    assert len({b.schedule for b in bugs}) == len(bugs)
    assert len({b.reproducer.cpp for b in bugs}) == len(bugs)  # one file each, none overwritten
    assert len({b.reproducer.python for b in bugs}) == len(bugs)
    session = sessions("copyable-task", "asan")
    for b in bugs:
        # Each minimal schedule shows its own finding, not another one's ...
        again = session.run(b.schedule).primary
        assert again is not None and again.signature == b.finding.signature, _readable(result)
        # ... and was shrunk for it: leaving out any one op loses that finding.
        for i in range(len(b.schedule.ops)):
            ops = b.schedule.ops[:i] + b.schedule.ops[i + 1:]
            if not ops:
                continue
            try:
                shorter = Schedule(b.schedule.target, ops, slots=b.schedule.slots,
                                   threads=b.schedule.threads)
            except InvalidSchedule:
                continue
            f = session.run(shorter).primary
            assert f is None or f.signature != b.finding.signature, (
                f"without op {i}, {shorter.render()} still shows {b.finding.signature}\n"
                + _readable(result))


# -- 3, 4. the reproducers, run the way a maintainer would run them ----------------------

def _shortest(result: CampaignResult):
    bugs = _of_kind(result, result.target.expected)
    assert bugs, _readable(result)
    return min(bugs, key=lambda b: len(b.schedule.ops))


@pytest.mark.parametrize("name", sorted(CPP_ERROR))
def test_cpp_reproducer_builds_and_fails_by_its_own_build_line(campaigns, name):
    bug = _shortest(campaigns(name))
    text = bug.reproducer.cpp.read_text()
    first = text.splitlines()[0]
    assert first.startswith("// build: ")
    cmd = first[len("// build: "):]
    proc = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "bash", "-c", cmd],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, (cmd, proc.stdout, proc.stderr)
    assert CPP_ERROR[name] in proc.stderr, (cmd, proc.stderr)


@pytest.mark.parametrize("name", sorted(CPP_ERROR))
def test_pytest_reproducer_fails_with_the_finding(campaigns, name):
    bug = _shortest(campaigns(name))
    path = bug.reproducer.python
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", str(path)], capture_output=True,
                          text=True, timeout=300, cwd=path.parent)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert f"stresscoro finding: {bug.finding.kind}" in proc.stdout, proc.stdout


# -- 5. the example database replays a saved failure first -------------------------------

def test_example_database_replays_the_saved_failure_first(tmp_path):
    target = targets.get("copyable-task")
    kind = target.expected
    options = dict(max_examples=40, verify=False, out_dir=None)
    db = DirectoryBasedExampleDatabase(str(tmp_path / "db"))
    first = run_campaign(target, "asan", seed=1, database=db, **options)
    found = _of_kind(first, kind)
    assert found, _readable(first)
    assert min(b.first_example for b in found) > 1, _readable(first)  # it had to search
    # Without the database, the second seed does not fail at its first example either ...
    control = run_campaign(target, "asan", seed=2, database=None, **options)
    assert all(b.first_example > 1 for b in control.findings), _readable(control)
    # ... with it, the first example it runs is the saved failure, already minimal.
    second = run_campaign(target, "asan", seed=2, database=db, **options)
    assert second.findings, _readable(second)
    assert second.findings[0].first_example == 1, _readable(second)
    assert second.findings[0].finding.kind == kind
    shortest = min(found, key=lambda b: len(b.schedule.ops))
    assert second.findings[0].schedule == shortest.schedule, _readable(second)


# -- 6. the `fuzz` command's contract ------------------------------------------------------

def _command() -> list[str]:
    script = Path(sys.executable).with_name("stresscoro")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "stresscoro.cli"]


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*_command(), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_fuzz_json_to_stdout_with_findings(tmp_path):
    out = tmp_path / "out"
    # --sanitizer and --max-examples keep the run short and independent of $CI and
    # $STRESSCORO_PROFILE; everything else is the command a CI job runs.
    proc = _cli("fuzz", "copyable-task", "task", "--seed", "1", "--json", "-", "--out", out,
                "--sanitizer", "asan", "--max-examples", "40", cwd=tmp_path)
    assert proc.returncode == 1, (proc.stdout[-3000:], proc.stderr[-3000:])
    data = json.loads(proc.stdout)  # nothing but the JSON on stdout
    assert set(data) >= {"results"}
    results = {r["target"]: r for r in data["results"]}
    assert sorted(results) == ["copyable-task", "task"]
    for r in data["results"]:
        assert {"target", "sanitizer", "examples", "elapsed_s", "findings"} <= set(r)
        assert r["sanitizer"] == "asan"
        assert isinstance(r["examples"], int) and r["examples"] > 0
        assert isinstance(r["elapsed_s"], (int, float)) and r["elapsed_s"] >= 0
    assert results["task"]["findings"] == []
    findings = results["copyable-task"]["findings"]
    assert findings
    assert "heap-use-after-free" in {f["kind"] for f in findings}
    for f in findings:
        assert {"kind", "length", "ops", "reproducer"} <= set(f)
        assert f["length"] == len(f["ops"]) > 0
        assert all(o["op"] in OPS for o in f["ops"])
        rep = f["reproducer"]
        assert {"cpp", "python", "verified"} <= set(rep)
        assert rep["verified"] is True, rep
        assert Path(rep["cpp"]).is_file() and Path(rep["python"]).is_file()
        assert Path(rep["cpp"]).parent == out.resolve()
    # Progress and the summary go to stderr.
    assert "summary:" in proc.stderr
    assert "copyable-task/asan" in proc.stderr


def test_fuzz_clean_target_exits_zero(tmp_path):
    proc = _cli("fuzz", "task", "--max-examples", "50", "--seed", "1", cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert re.search(r"^\[\s*\d+/\d+\] task/\w+: clean after \d+ examples", proc.stdout, re.M), \
        proc.stdout


# -- 7. the strategies -------------------------------------------------------------------

def test_strategies_all_lists_exactly_the_public_imports():
    tree = ast.parse(Path(strategies_pkg.__file__).read_text())
    imported = {(a.asname or a.name) for node in tree.body if isinstance(node, ast.ImportFrom)
                for a in node.names if a.name != "*"}
    public = {n for n in imported if not n.startswith("_")} - {"annotations"}
    assert public  # the parse found the import list
    assert sorted(strategies_pkg.__all__) == sorted(public)
    assert len(strategies_pkg.__all__) == len(set(strategies_pkg.__all__))
    assert all(hasattr(strategies_pkg, n) for n in strategies_pkg.__all__)


FACTORIES = [{"name": "value", "min": 0, "max": 100}, {"name": "other", "min": 5, "max": 9}]
EVERY_OP = frozenset(OP_ORDER)
MOVE_ONLY = frozenset({"make", "move", "move_assign", "swap", "resume", "drop", "probe", "touch",
                       "send"})
COMBINATORS = (Signature("await_it", ("move",)), Signature("when_all", ("ref", "copy")))
CUSTOM_OPS = (Signature("spawn", ("consume",)), Signature("poll", ()))
STRATEGY_SETTINGS = settings(max_examples=200, database=None, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def _check_schedule(s: Schedule, capabilities, threads: int) -> None:
    assert s.threads == threads
    assert s.ops
    s.simulate()  # no InvalidSchedule: every op runs on the thread holding its slots
    for o in s.ops:
        assert o.name in capabilities, o
        assert 0 <= o.thread < threads, o
        if o.name == "send":
            assert threads > 1, o
            assert 0 <= o.field("to") < threads and o.field("to") != o.thread, o
        if o.name == "make":
            f = FACTORIES[o.field("factory")]
            assert f["min"] <= o.field("arg") <= f["max"], o


@seed(1)
@STRATEGY_SETTINGS
@given(schedules("t", EVERY_OP, FACTORIES, threads=3))
def test_schedules_on_three_threads_stay_legal(s):
    _check_schedule(s, EVERY_OP, 3)


@seed(1)
@STRATEGY_SETTINGS
@given(schedules("t", EVERY_OP, FACTORIES, threads=1))
def test_schedules_on_one_thread_never_send(s):
    _check_schedule(s, EVERY_OP, 1)
    assert "send" not in {o.name for o in s.ops}


@seed(1)
@STRATEGY_SETTINGS
@given(schedules("t", MOVE_ONLY, FACTORIES, threads=2))
def test_schedules_of_a_move_only_type_never_copy(s):
    _check_schedule(s, MOVE_ONLY, 2)
    assert not {"copy", "copy_assign"} & {o.name for o in s.ops}


def test_strategies_reach_every_op_and_thread():
    """The checks above are not vacuous: the strategy does generate sends, other threads
    and every op of the vocabulary."""
    seen_ops: set[str] = set()
    seen_threads: set[int] = set()

    @seed(1)
    @settings(STRATEGY_SETTINGS, max_examples=300)
    @given(schedules("t", EVERY_OP, FACTORIES, threads=3, combinators=COMBINATORS,
                     custom_ops=CUSTOM_OPS))
    def collect(s):
        seen_ops.update(o.name for o in s.ops)
        seen_threads.update(o.thread for o in s.ops)

    collect()
    assert seen_ops == set(EVERY_OP)
    assert seen_threads == {0, 1, 2}


def _make_big_then_resume(s: Schedule) -> bool:
    for i, o in enumerate(s.ops):
        if o.name == "make" and o.field("arg") >= 50:
            if any(p.name == "resume" and p.field("slot") == o.field("slot") for p in s.ops[i + 1:]):
                return True
    return False


@pytest.mark.parametrize("threads", [1, 2])
def test_a_flat_predicate_shrinks_to_the_minimal_schedule(threads):
    # On two threads a make is six choices (it draws its thread), one more than
    # Hypothesis's deletion passes remove at once, so whether a leading make goes depends
    # on the path the search took: this pins the path of a strategy without preemptions
    # (the next test has them).
    factories = [{"name": "a", "min": 0, "max": 100}, {"name": "b", "min": 0, "max": 100}]
    found = find(schedules("t", EVERY_OP, factories, threads=threads, preemptions=False),
                 _make_big_then_resume,
                 settings=settings(database=None, derandomize=True, max_examples=2000))
    assert list(found.ops) == [make(0, factory=0, arg=50), op("resume", 0)]


def test_preemptions_shrink_away_when_the_finding_needs_none():
    factories = [{"name": "a", "min": 0, "max": 100}, {"name": "b", "min": 0, "max": 100}]
    found = find(schedules("t", EVERY_OP, factories, threads=2), _make_big_then_resume,
                 settings=settings(database=None, derandomize=True, max_examples=2000))
    assert found.preemptions == ()
    assert found.ops[-2:] == (make(0, factory=0, arg=50), op("resume", 0))


def test_two_runs_sharing_one_out_folder_verify_every_reproducer(tmp_path):
    """Each run claims its own file names: nothing is overwritten under the other."""
    out = tmp_path / "shared-out"
    procs = [subprocess.Popen([*_command(), "fuzz", "copyable-task", "leaky-task", "--sanitizer",
                               "asan", "--seed", str(run_seed), "--max-examples", "40", "--out", str(out),
                               "--json", str(tmp_path / f"run{run_seed}.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for run_seed in (1, 2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    files = []
    for run_seed, proc, (stdout, stderr) in zip((1, 2), procs, outputs):
        assert proc.returncode == 1, (stdout[-2000:], stderr[-2000:])
        data = json.loads((tmp_path / f"run{run_seed}.json").read_text())
        reps = [f["reproducer"] for r in data["results"] for f in r["findings"]]
        assert reps and all(r["verified"] for r in reps), reps
        files += [r["cpp"] for r in reps] + [r["python"] for r in reps]
    assert len(files) == len(set(files)), "two runs wrote the same reproducer file"
    assert all(Path(f).exists() for f in files)
