"""Composition (issue 8): make_from, custom ops, step, probes in slots, begin/end,
run_pending, declared preconditions, continuation invariants and their reproducers.

Most tests run fixed schedules against tests/adapters/compose.cpp (a small lazy-task
library with a per-schedule scheduler; COMPOSE_FLAW picks a seeded bug) and the fixture
libraries under tests/libs; the strategy tests run without native code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings

from stresscoro import reproducer, targets
from stresscoro.runner import forbidden
from stresscoro.schedule import Schedule, Signature, make, op
from stresscoro.session import TargetSession
from stresscoro.strategies import schedules, schedules_for

TESTS = Path(__file__).resolve().parent
COMPOSE = TESTS / "adapters" / "compose.cpp"
LIBS = TESTS / "libs"

AWAIT_IT = Signature("await_it", ("ref",))
ADD = Signature("add", ("ref", "ref"))
SPAWN = Signature("spawn", ("consume",))


def compose(flaw: int) -> targets.Target:
    return targets.from_adapter(COMPOSE, name=f"compose-{flaw}", defines=(f"COMPOSE_FLAW={flaw}",))


def lib(name: str, *defines: str) -> targets.Target:
    return targets.from_adapter(LIBS / name / "adapter.cpp", include_dirs=(str(LIBS / name),),
                                defines=defines)


@pytest.fixture(scope="module")
def open_session():
    opened: dict[str, TargetSession] = {}

    def get(target: targets.Target) -> TargetSession:
        key = f"{target.name}:{target.defines}"
        if key not in opened:
            opened[key] = TargetSession(target, "asan").open()
        return opened[key]

    yield get
    for s in opened.values():
        s.close()


def sched(session: TargetSession, *ops, slots: int = 0) -> Schedule:
    return Schedule(session.target.name, ops, slots=slots, combinators=session.combinators,
                    custom_ops=session.custom_ops)


PARENT_DESTROYED = (make(0, 0, 1), op("make_from", 1, 0, 0, 0, -1), op("resume", 1),
                    op("drop", 1), op("resume", 0))
PROBE_DESTROYED = (make(0, 0, 1), op("probe", 1, 0), op("drop", 1), op("resume", 0))


# -- the driver ------------------------------------------------------------------------


def test_the_adapter_describes_its_composition(open_session):
    s = open_session(compose(0))
    assert s.combinators == (AWAIT_IT, ADD)
    assert s.custom_ops == (SPAWN,)
    assert {"make_from", "call", "step", "probe"} <= s.capabilities
    d = s.worker.description
    assert d["lifecycle"] == ["begin", "step", "run_pending", "end"]
    assert d["await"] == "detected"


@pytest.mark.parametrize("ops", [PARENT_DESTROYED, PROBE_DESTROYED], ids=["parent", "probe"])
def test_a_destroyed_awaiter_left_in_the_child_is_a_use_after_free(open_session, ops):
    seeded = open_session(compose(1))
    s = sched(seeded, *ops)
    outcome = seeded.run(s)
    assert outcome.primary is not None and outcome.primary.kind == "heap-use-after-free"
    assert outcome.primary.op_index == len(ops) - 1  # the child's resume reaches freed memory
    fixed = open_session(compose(0))
    assert fixed.run(sched(fixed, *ops)).ok


def test_spawned_frames_live_in_the_scheduler_until_drained(open_session):
    s = open_session(compose(0))
    spawned = sched(s, make(0, 0, 3), op("call", 0, 0, 0, -1), op("step"), make(1, 0, 2),
                    op("call", 0, 0, 1, -1))
    assert spawned.simulate()[-1][0].live is False  # consumed
    assert s.run(spawned).ok  # run_pending drains what is queued, end() frees the rest


def test_a_scheduler_that_forgets_its_frames_leaks_them(open_session):
    s = open_session(compose(2))
    outcome = s.run(sched(s, make(0, 0, 3), op("call", 0, 0, 0, -1)))
    assert [f.kind for f in outcome.findings] == ["leak"]
    assert outcome.findings[0].op_index == 0  # the frame made at op 0


def test_leaks_after_different_ops_stay_distinct(open_session):
    s = open_session(compose(3))
    by_make = s.run(sched(s, make(0), make(1), op("move_assign", 1, 0))).primary
    by_combinator = s.run(sched(s, make(0), op("make_from", 1, 0, 0, 0, -1), make(2),
                                op("move_assign", 2, 1))).primary
    assert by_make.kind == by_combinator.kind == "leak"
    assert by_make.location == "allocated by make"
    assert by_combinator.location == "allocated by make_from(await_it)"
    assert by_make.signature != by_combinator.signature


def test_a_continuation_the_child_never_resumes_is_lost(open_session):
    lossy = open_session(compose(4))
    s = sched(lossy, make(0, 0, 0), op("probe", 1, 0))
    found = [f for f in lossy.run(s).findings if f.kind == "invariant:continuation-lost"]
    assert found and found[0].op_index == 1
    correct = open_session(compose(0))
    assert correct.run(sched(correct, make(0, 0, 0), op("probe", 1, 0))).ok


def test_a_continuation_resumed_twice_is_reported(open_session):
    twice = open_session(compose(5))
    s = sched(twice, make(0, 0, 0), op("probe", 1, 0))
    assert "invariant:continuation-resumed-twice" in {f.kind for f in twice.run(s).findings}


def test_end_of_schedule_drops_go_newest_first():
    s = Schedule("t", (make(2), make(0), op("probe", 1, 0), make(3)), slots=4)
    assert s.end_drops() == [[3, 1, 0, 2]]


# -- reproducers -------------------------------------------------------------------------


@pytest.mark.parametrize("flaw, ops, kind", [
    (1, PARENT_DESTROYED, "heap-use-after-free"),
    (4, (make(0, 0, 0), op("probe", 1, 0)), "invariant:continuation-lost"),
    (3, (make(0, 0, 2), op("call", 0, 0, 0, -1), op("step"), make(1), make(2),
         op("move_assign", 2, 1)), "leak"),
])
def test_reproducers_replay_composition_ops_and_check_continuations(open_session, tmp_path, flaw,
                                                                    ops, kind):
    session = open_session(compose(flaw))
    s = sched(session, *ops)
    finding = next(f for f in session.run(s).findings if f.kind == kind)
    rep = reproducer.write(s, session.target, session.options, finding, session.factory_names,
                           tmp_path)
    cpp = rep.cpp.read_text()
    assert "NotImplemented" not in cpp and "could not write" not in cpp
    if any(o.name == "make_from" for o in ops):
        assert "A::combine(0, 0" in cpp
    if any(o.name == "call" for o in ops):
        assert "A::apply(0, 0" in cpp and "A::step();" in cpp
        assert "stresscoro::replay::begin<A>();" in cpp
    reproducer.verify(rep, finding)
    assert rep.verified, rep.notes
    assert rep.cpp_kind == rep.python_kind == kind


# -- declared preconditions in the strategies ----------------------------------------------


STRATEGY = settings(max_examples=400, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))
CAPS = {"make", "move", "move_assign", "swap", "resume", "drop", "make_from", "probe", "call",
        "step", "copy", "copy_assign"}
FACTORIES = [{"name": "v", "min": 0, "max": 3}]


def _uses_after_move(s: Schedule) -> list[str]:
    """Ops that use a moved-from object (not drop, assign-to or make-into)."""
    moved: set[int] = set()
    bad = []
    states = s.simulate()
    for i, o in enumerate(s.ops):
        before = states[i - 1] if i else {}
        if any(not (k in before and before[k].live) for k in o.slots()
               if o.name not in ("make", "make_from", "probe", "copy", "move", "drop", "send")):
            continue  # the driver skips an op on an empty slot
        sig = s.signature(o)
        used = {"copy": [0], "move": [0], "copy_assign": [0], "move_assign": [0],
                "swap": [0, 1], "resume": [0], "probe": [1]}.get(o.name, [])
        slots = [o.args[i] for i in used]
        if all(k in before and before[k].live for k in o.inputs()):
            slots += list(o.inputs())
        bad += [o.render() for k in slots if k in moved]
        if o.name == "move" and o.args[0] != o.args[1] and o.args[0] in before \
                and before[o.args[0]].live:  # a self-move or a move from nothing is skipped
            src, dst = o.args
            moved.discard(dst)
            moved.add(src)
        elif o.name == "move_assign":
            src, dst = o.args
            moved.discard(dst)
            moved.add(src)
        elif o.name in ("make", "make_from"):
            moved.discard(o.args[0])
        elif o.name == "copy_assign":
            moved.discard(o.args[1])
        elif o.name == "copy":
            moved.discard(o.args[1])
        elif o.name == "swap":
            a, b = o.args
            if (a in moved) != (b in moved):
                moved ^= {a, b}
        elif o.name == "drop":
            moved.discard(o.args[0])
        inputs_live = all(k in before and before[k].live for k in o.inputs())
        for k, mode in zip(o.inputs(), sig.inputs if sig and inputs_live else ()):
            if mode == "move":
                moved.add(k)
            elif mode == "consume":
                moved.discard(k)
    return bad


def _collect(strategy) -> list[Schedule]:
    out: list[Schedule] = []

    @seed(3)
    @STRATEGY
    @given(strategy)
    def run(s):
        out.append(s)

    run()
    return out


def _sigs():
    return dict(combinators=(Signature("await_it", ("move",)), Signature("when_all", ("ref", "ref"))),
                custom_ops=(SPAWN, Signature("poll", ())))


def test_preconditions_forbidden_by_default_are_never_generated():
    found = _collect(schedules("t", CAPS, FACTORIES, **_sigs()))
    ops = [o for s in found for o in s.ops]
    assert {"make_from", "call", "step", "probe"} <= {o.name for o in ops}
    assert not [s for s in found if _uses_after_move(s)]
    assert not [o for o in ops if o.name == "move_assign" and o.args[0] == o.args[1]]
    for s in found:
        assert not _awaited_twice(s), s.render()


def _awaited_twice(s: Schedule) -> list[str]:
    """Ops that await an object already awaited (a probe, or a combinator's ref/move input)."""
    awaited: set[int] = set()
    bad = []
    states = s.simulate()
    for i, o in enumerate(s.ops):
        before = states[i - 1] if i else {}
        live = lambda k: k in before and before[k].live  # noqa: E731
        sig = s.signature(o)
        if o.name == "probe" and live(o.args[1]):
            bad += [o.render()] if o.args[1] in awaited else []
            awaited.add(o.args[1])
            awaited.discard(o.args[0])
        elif o.name == "make_from" and all(live(k) for k in o.inputs()):
            ins = [k for k, m in zip(o.inputs(), sig.inputs) if m != "copy"]
            bad += [o.render()] if awaited & set(ins) or len(set(ins)) < len(ins) else []
            awaited |= set(ins)
            awaited.discard(o.args[0])
        elif o.name in ("move", "move_assign") and live(o.args[0]) and o.args[0] != o.args[1]:
            if o.name == "move" or live(o.args[1]):
                was = o.args[0] in awaited
                awaited -= set(o.args)
                if was:
                    awaited.add(o.args[1])
        elif o.name == "swap" and live(o.args[0]) and live(o.args[1]):
            a, b = o.args
            if (a in awaited) != (b in awaited):
                awaited ^= {a, b}
        elif o.name in ("make", "drop"):
            awaited.discard(o.args[0])
        elif o.name in ("copy", "copy_assign") and live(o.args[0]):
            awaited.discard(o.args[1])
    return bad


def test_tolerated_preconditions_are_generated():
    rules = dict(use_after_move=True, self_move_assign=True, await_twice=True)
    found = _collect(schedules("t", CAPS, FACTORIES, rules=rules, **_sigs()))
    ops = [o for s in found for o in s.ops]
    assert [s for s in found if _uses_after_move(s)]
    assert [o for o in ops if o.name == "move_assign" and o.args[0] == o.args[1]]
    assert [s for s in found if _awaited_twice(s)]


def test_borrowed_objects_outlive_their_borrowers():
    """A combinator's ref input or a probe's awaited object is never dropped, replaced,
    moved from or consumed while what refers to it lives."""
    for s in _collect(schedules("t", CAPS, FACTORIES, **_sigs())):
        borrows: dict[int, set[int]] = {}
        states = s.simulate()
        for i, o in enumerate(s.ops):
            before = states[i - 1] if i else {}
            live = lambda k: k in before and before[k].live  # noqa: E731
            lent = {k for b in borrows.values() for k in b}
            if o.name in ("drop", "make", "make_from", "probe"):
                assert o.args[0] not in lent, s.render()
            if o.name in ("move", "move_assign", "swap"):
                assert not set(o.args) & lent, s.render()
            sig = s.signature(o)
            for k, mode in zip(o.inputs(), sig.inputs if sig else ()):
                if mode in ("move", "consume"):
                    assert k not in lent, s.render()
            if o.name in ("drop", "make", "make_from", "probe", "move", "copy"):
                borrows.pop(o.args[0] if o.name not in ("move", "copy") else o.args[1], None)
            if o.name == "probe" and live(o.args[1]):
                borrows[o.args[0]] = {o.args[1]}
            elif o.name == "make_from" and all(live(k) for k in o.inputs()):
                borrows[o.args[0]] = {k for k, m in zip(o.inputs(), sig.inputs) if m == "ref"}
            elif o.name in ("copy_assign", "move_assign") and live(o.args[0]) and live(o.args[1]):
                lent_by_src = borrows.get(o.args[0], set())
                if o.name == "move_assign":
                    borrows.pop(o.args[0], None)
                borrows[o.args[1]] = set(lent_by_src)
            elif o.name == "move" and o.args[0] in borrows and live(o.args[0]):
                borrows[o.args[1]] = borrows.pop(o.args[0])


def test_strictlib_rules_decide_what_is_generated_both_ways(open_session):
    """The library's own declaration decides: forbidding use-after-move and self swap
    keeps them out; declaring it tolerates them brings them in."""
    seen = {}
    for defines in ((), ("STRICTLIB_DECLARE_TOLERANT=1",)):
        session = open_session(lib("strictlib", *defines))
        found = _collect(schedules_for(session))
        self_swaps = [o for s in found for o in s.ops if o.name == "swap" and o.args[0] == o.args[1]]
        seen[defines] = (bool(self_swaps), bool([s for s in found if _uses_after_move(s)]))
        tolerant = bool(defines)
        assert ("no self swap" in forbidden(session.rules)) is not tolerant
    assert seen[()] == (False, False)
    assert seen[("STRICTLIB_DECLARE_TOLERANT=1",)] == (True, True)


# -- notes instead of build failures --------------------------------------------------------


def test_an_await_the_library_restricts_is_left_out_with_one_note(open_session):
    s = open_session(lib("restrictlib"))
    assert "probe" not in s.capabilities and "make_from" in s.capabilities
    notes = [n for n in s.notes if n.startswith("left out: op probe")]
    assert len(notes) == 1
    assert "compiler said:" in notes[0] and "coroutine_handle" in notes[0]
    assert any("no handle()" in n for n in s.notes)


def test_an_await_the_adapter_asks_for_is_a_build_error(tmp_path):
    adapter = tmp_path / "asks.cpp"
    text = (LIBS / "restrictlib" / "adapter.cpp").read_text()
    adapter.write_text(text.replace("    static void resume(object& t) { t.resume(); }",
                                    "    static void resume(object& t) { t.resume(); }\n"
                                    "    static constexpr bool awaitable = true;"))
    proc = subprocess.run([sys.executable, "-m", "stresscoro.cli", "fuzz", "--adapter", str(adapter),
                           "-I", str(LIBS / "restrictlib"), "--max-examples", "1",
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert "BuildError" in said and "await_suspend" in said and "error:" in said
    assert "Traceback" not in said


def test_drive_suffixes_never_resume_a_moved_from_object():
    from stresscoro.strategies import drive_suffixes
    s = Schedule("t", (make(0), op("make_from", 1, 0, 0, 0, -1), make(2), op("probe", 0, 3)),
                 slots=4, combinators=(Signature("await_it", ("move",)),))
    resumed = [d.ops[-1].args[0] for d in drive_suffixes(s, {"resume", "probe", "make_from"})]
    assert resumed == [2, 1]  # not slot 0: its object was moved into the combinator
