"""The shrinker of findings from outside Hypothesis (stresscoro/shrink.py), on
predicates over the schedule itself: no worker runs, so each test is milliseconds."""

from __future__ import annotations

from stresscoro.schedule import Preemption, Schedule, make, op
from stresscoro.minimize import shrink

FACTORIES = [{"name": "value", "min": 0, "max": 3}]
RULES: dict = {}


def shrunk(s: Schedule, fails) -> Schedule:
    assert fails(s)
    small, runs = shrink(s, fails, FACTORIES, RULES, {"make", "copy", "resume", "drop", "touch"})
    assert runs > 0 and fails(small)
    return small


def padded(*preemptions: Preemption) -> Schedule:
    return Schedule("t", (
        make(0), make(1, thread=1), op("copy", 0, 2), op("resume", 0), op("touch", 2),
        op("resume", 1, thread=1), op("drop", 2), op("drop", 1, thread=1), op("drop", 0),
    ), slots=3, threads=2, preemptions=preemptions)


def test_preemptions_a_finding_does_not_need_go_first():
    s = padded(Preemption(3, 4, 1), Preemption(6, 2, 1), Preemption(7, 5, 0))
    small = shrunk(s, lambda c: any(o.name == "touch" for o in c.ops))
    assert small.preemptions == ()
    assert [o.name for o in small.ops] == ["touch"]


def test_the_sync_point_a_finding_needs_is_lowered_to_the_first_that_shows_it():
    s = padded(Preemption(3, 8, 1))
    small = shrunk(s, lambda c: any(p.after >= 3 for p in c.preemptions))
    assert small.preemptions == (Preemption(0, 3, 1),)
    assert len(small.ops) == 1


def test_deleting_ops_renumbers_the_preemption_a_finding_needs():
    """The finding needs a preemption of thread 1's drop handing the CPU to thread 0:
    every other op goes, the preemption follows its op to its new index, and the drop
    keeps its thread (moved to thread 0, its preemption would go)."""
    s = padded(Preemption(2, 1, 1), Preemption(7, 2, 0))

    def fails(c: Schedule) -> bool:
        return any(c.ops[p.op].name == "drop" and c.ops[p.op].thread == 1 and p.to == 0
                   for p in c.preemptions)

    small = shrunk(s, fails)
    assert small.ops == (op("drop", 0, thread=1),)  # its slot lowered too
    assert small.preemptions == (Preemption(0, 1, 0),)


def test_a_preemption_goes_with_the_op_it_splits():
    s = padded(Preemption(4, 1, 1))
    small = shrunk(s, lambda c: any(o.name == "copy" for o in c.ops))
    assert small.preemptions == ()  # the touch it split is gone
