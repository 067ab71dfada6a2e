"""Preemption inside ops (native/include/stresscoro/preempt.hpp, the driver's scheduler):
a schedule's preemptions reach bugs that whole-op turns cannot, replay the same way every
time, are named in reports with the place of the sync point, are forced again by the C++
reproducer, and PCT in the explorer finds a depth-2 bug as often as its bound promises."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from stresscoro import reproducer, schedule as sched, targets
from stresscoro.build import BuildOptions
from stresscoro.explore import NativeProgram, explore_batches
from stresscoro.runner import run_campaign
from stresscoro.schedule import Preemption, Schedule, make, op
from stresscoro.session import TargetSession
from stresscoro.strategies import interleavings

from conftest import SCHEDULES

ADAPTERS = Path(__file__).parent / "adapters"
NEW_CLASSES = ["check-then-act-task", "lost-wakeup-task", "when-all-counter-task"]


def _minimal(name: str) -> Schedule:
    return sched.load(str(SCHEDULES / f"{name}.json"))


@pytest.mark.parametrize("name", NEW_CLASSES)
def test_the_preemption_is_what_reaches_the_bug(sessions, name):
    """The seeded bug needs the schedule's preemption: the same ops without it are clean,
    and the correct twin is clean with it."""
    s = _minimal(name)
    target = targets.get(name)
    assert s.preemptions, f"{name}: the saved minimal schedule has no preemption"
    found = sessions(name).run(s)
    assert found.primary is not None and found.primary.kind == target.expected, found.describe(s)
    assert sessions(name).run(s.replace(preemptions=())).ok
    twin = dataclasses.replace(s, target=target.twin)
    assert sessions(target.twin).run(twin).ok


@pytest.mark.parametrize("name", NEW_CLASSES)
def test_a_preempted_schedule_gives_the_same_outcome_every_time(sessions, name):
    s = _minimal(name)
    session = sessions(name)
    seen = {(o.primary.kind, o.primary.op_index) if o.primary else None
            for o in (session.run(s) for _ in range(20))}
    assert seen == {(targets.get(name).expected, seen and next(iter(seen))[1])}, seen


def test_the_report_names_where_the_thread_was_preempted(sessions):
    s = _minimal("check-then-act-task")
    found = sessions("check-then-act-task").run(s).primary
    (line,) = found.preemption_lines(s)
    # "thread 0 preempted in op 3 (drop(0)) after atomic load #1 at
    #  stresscoro::targets::async_task::release async_task.hpp:NNN; thread 1 ran ..."
    assert line.startswith("thread 0 preempted in op 3 (drop(0)) after atomic load #1 at "), line
    assert re.search(r"async_task::release async_task\.hpp:\d+; thread 1 ran its end-of-schedule drops$",
                     line), line


def test_a_mutex_held_across_a_preemption_hands_the_cpu_back(sessions):
    """A thread preempted while it holds a lock: the thread that runs next and wants the
    lock gives its turn back instead of blocking forever, and the schedule ends clean."""
    target = targets.from_adapter(str(ADAPTERS / "locked_count.cpp"))
    s = Schedule(target.name, (make(0), op("copy", 0, 1), op("send", 1, 1), op("drop", 0),
                               op("drop", 1, thread=1)),
                 preemptions=(Preemption(3, 1, 1),))
    with TargetSession(target, "asan", timeout_s=10) as session:
        outcome = session.run(s)
        assert outcome.ok, outcome.describe(s)
        # The preemption after the lock took effect: thread 1's drop ran inside op 3.
        seen = [ev for ev in outcome.raw.events if ev[0] == 14]
        assert [(ev[1], ev[3], ev[4], ev[5]) for ev in seen] == [(3, 1, 1, 9)]


@pytest.mark.parametrize("name", NEW_CLASSES)
def test_the_cpp_reproducer_forces_the_same_interleaving(tmp_path, sessions, name):
    s = _minimal(name)
    target = targets.get(name)
    finding = sessions(name).run(s).primary
    assert finding.preemptions
    rep = reproducer.write(s, target, BuildOptions(sanitizer="asan"), finding,
                           [f["name"] for f in sessions(name).factories], tmp_path)
    text = rep.cpp.read_text()
    assert "stresscoro::replay::turns turns(2, {" in text and "// Preemptions" in text
    assert reproducer.verify(rep, finding).verified, rep.notes
    # Without its preemption table the same program shows nothing.
    plain = tmp_path / "plain.cpp"
    plain.write_text(re.sub(r"(turns turns\(2, \{[0-9, ]*\}), \{[0-9, ]*\}\)", r"\1, {})", text))
    build = reproducer.build_line_of(rep.cpp).replace(str(rep.cpp), str(plain))
    build = build.replace(str(rep.cpp.with_suffix("")), str(tmp_path / "plain"))
    proc = subprocess.run(["bash", "-c", build], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ERROR" not in proc.stderr, proc.stderr[-2000:]


def test_pct_finds_a_depth_2_bug_within_its_bound(tmp_path):
    """PCT's bound (Burckhardt et al., ASPLOS 2010): a bug of depth d is found by one run
    with probability at least 1/(n * k^(d-1)), n threads, k steps. The check-then-act
    release needs one preemption (depth 2): thread 0 between its load and its decrement.
    Over 400 PCT runs of the minimal ops (seeds 1..400, so the count is fixed), the share
    that finds it must be at least 1/(n*k)."""
    s = _minimal("check-then-act-task").replace(preemptions=())
    program = NativeProgram(targets.get("check-then-act-task"), "asan")
    path = tmp_path / "schedule.txt"
    path.write_text(" ".join(map(str, s.encode())))
    out = subprocess.run([str(program.path), "interleave", str(path), "400"], capture_output=True,
                         text=True, timeout=300, env={"ASAN_OPTIONS": "detect_leaks=0"})
    assert out.returncode == 0, out.stderr
    fields = dict(kv.split("=") for kv in out.stdout.split())
    k, n, runs, found = (int(fields[key]) for key in ("points", "threads", "runs", "found"))
    assert k >= 2 and n == 2
    assert found / runs >= 1 / (n * k), out.stdout


def test_fuzz_finds_the_check_then_act_release_and_shrinks_it_to_its_minimal(tmp_path):
    """A default (dev) campaign: the preemption is not drawn but tried by the campaign at
    the sync points each schedule passes (strategies.interleavings); the finding carries
    it, is shrunk with it to the four ops of tests/schedules, and its reproducers show it."""
    target = targets.get("check-then-act-task")
    result = run_campaign(target, "asan", seed=1, database=None, out_dir=tmp_path)
    found = [b for b in result.findings if b.finding.kind == target.expected]
    assert found, result.to_json()
    best = min(found, key=lambda b: len(b.schedule.ops))
    assert len(best.schedule.ops) == len(_minimal("check-then-act-task").ops)
    assert len(best.schedule.preemptions) == 1
    assert best.reproducer.verified, best.reproducer.notes


def test_a_campaign_tries_first_sync_points_first_latest_ops_first():
    s = Schedule("t", (make(0), op("copy", 0, 1), op("send", 1, 1), op("drop", 0),
                       op("drop", 1, thread=1)))
    tried = [(p.op, p.after, p.to) for v in interleavings(s, {1: 1, 3: 3, 4: 2}, limit=5)
             for p in v.preemptions]
    assert tried == [(4, 1, 0), (3, 1, 1), (1, 1, 1), (4, 2, 0), (3, 2, 1)]
    assert interleavings(s.replace(preemptions=(Preemption(3, 1, 1),)), {3: 3}) == []
    assert interleavings(Schedule("t", (make(0), op("drop", 0))), {1: 2}) == []


def test_the_explorer_preempts_the_same_way_on_fibers_and_os_threads(monkeypatch):
    """Under TSan the explorer's schedule threads are fibers (or OS threads with
    STRESSCORO_FIBERS=0): both hand the CPU over at the same sync points, so the same seed
    stops at the same schedule, with the same preemption."""
    program = NativeProgram(targets.get("check-then-act-task"), "tsan")
    seen = {}
    for fibers in ("1", "0"):
        monkeypatch.setenv("STRESSCORO_FIBERS", fibers)
        seen[fibers] = explore_batches(program, seed=1, schedules=20_000, max_findings=1,
                                       settings={"threads": 2})
        assert len(seen[fibers].stops) == 1
    (fiber_stop, _), = seen["1"].stops
    (thread_stop, _), = seen["0"].stops
    assert fiber_stop == thread_stop and len(fiber_stop.preemptions) >= 1
    assert seen["1"].schedules == seen["0"].schedules
