"""The same targets under clang++ as under g++, when clang++ is installed."""


import pytest

from stresscoro import schedule as sched
from stresscoro import targets
from stresscoro.session import TargetSession

from conftest import NEEDS_CLANG, SCHEDULES

pytestmark = NEEDS_CLANG


@pytest.mark.parametrize("name,sanitizer,kind", [
    ("copyable-task", "asan", "heap-use-after-free"),
    ("leaky-task", "asan", "leak"),
    ("relaxed-shared-task", "tsan", "data-race"),
])
def test_seeded_bug_found_under_clang(name, sanitizer, kind):
    s = sched.load(str(SCHEDULES / f"{name}.json"))
    with TargetSession(targets.get(name), sanitizer, compiler="clang++") as session:
        assert session.build.compiler_family == "clang"
        outcome = session.run(s)
    assert outcome.primary is not None and outcome.primary.kind == kind
    assert "libclang_rt" not in outcome.primary.location


def test_correct_twin_clean_under_clang():
    s = sched.Schedule("task", (sched.make(0), sched.op("move", 0, 1), sched.op("resume", 1)))
    with TargetSession(targets.get("task"), "asan", compiler="clang++") as session:
        assert session.run(s).ok


def test_tsan_hand_off_is_clean_on_the_acq_rel_twin_under_clang():
    """`send` leaves a count in the receiver's mailbox that its next turn peeks at without
    the lock; Clang's TSan sees that peek as an atomic read, so every write of the count
    must be one too, or the twin shows a race that is the driver's own."""
    s = sched.Schedule("shared-task", (sched.make(0), sched.op("copy", 0, 1), sched.op("send", 1, 1),
                                       sched.op("touch", 0), sched.op("resume", 1, thread=1)))
    with TargetSession(targets.get("shared-task"), "tsan", compiler="clang++") as session:
        outcome = session.run(s)
        assert outcome.ok, outcome.describe(s)
