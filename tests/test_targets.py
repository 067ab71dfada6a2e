"""Every seeded bug is found by its minimal schedule; every correct twin stays clean."""

from __future__ import annotations

import pytest

from stresscoro import schedule as sched
from stresscoro import targets
from stresscoro.schedule import Schedule, make, op

from conftest import SCHEDULES

# target -> (sanitizer, expected op index of the finding). The expected kind is the
# target's own metadata; len(ops) means "in the end-of-schedule drops".
SEEDED = {
    "copyable-task": ("asan", 2),
    "move-keeps-source-task": ("asan", 2),
    "leaky-task": ("asan", 0),
    "final-never-task": ("asan", 2),
    "self-assign-shared-task": ("asan", 1),
    "dangling-view-task": ("asan", 1),
    "nested-chain-task": ("asan", 1),
    "relaxed-shared-task": ("tsan", 5),
    # Composition classes (issue 8).
    "overwritten-awaiter-task": ("asan", 3),
    "eager-frees-task": ("asan", 1),
    "dangling-when-all-task": ("asan", 3),
    "inline-resume-when-all-task": ("asan", 4),
    "move-assign-leak-task": ("asan", 1),
    # Preemption inside ops (issue 17): schedule format 3, each with one preemption.
    "check-then-act-task": ("asan", 0),
    "lost-wakeup-task": ("asan", 0),
    "when-all-counter-task": ("asan", 5),
}


def test_every_bug_class_has_a_seeded_target_with_a_schedule_here():
    seeded = {t.name: t for t in targets.builtin_targets() if t.bug_class}
    assert sorted(t.bug_class for t in seeded.values()) == sorted(targets.BUG_CLASSES)
    assert set(SEEDED) == set(seeded)
    names = {t.name for t in targets.builtin_targets()}
    for t in seeded.values():
        assert t.twin in names and targets.get(t.twin).bug_class is None


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_minimal_schedule_finds_the_seeded_bug(sessions, name):
    target = targets.get(name)
    sanitizer, op_index = SEEDED[name]
    path = SCHEDULES / f"{name}.json"
    s = sched.load(str(path))
    outcome = sessions(name, sanitizer).run(s)
    assert outcome.primary is not None, f"{name}: no finding"
    assert outcome.primary.kind == target.expected
    assert outcome.primary.op_index == op_index
    assert outcome.primary.summary


def _task_like(name, n_factories=1, awaitable=False):
    ops = [make(0), make(1, 0, 3), op("resume", 0), op("move", 1, 2), op("resume", 2),
           op("resume", 2), op("move_assign", 2, 0), op("swap", 0, 1), op("drop", 1),
           op("resume", 1), make(1, n_factories - 1, 2), op("drop", 0), op("resume", 0)]
    if awaitable:
        ops += [make(3, 0, 7), op("await", 3), op("await", 3), make(4), op("resume", 4), op("await", 4)]
    return Schedule(name, tuple(ops))


def _shared(name):
    return Schedule(name, (
        make(0, 0, 5), op("copy", 0, 1), op("copy", 1, 2), op("touch", 2), op("resume", 1),
        op("copy_assign", 0, 0), op("copy_assign", 2, 1), op("move", 0, 3), op("copy_assign", 3, 0),
        op("swap", 1, 3), op("move_assign", 3, 3), op("move_assign", 1, 2), op("drop", 2),
        make(4), op("copy_assign", 4, 1), op("drop", 0), op("touch", 1)))


def _generator(name):
    return Schedule(name, (
        make(0, 0, 3), op("resume", 0), op("move", 0, 1), op("resume", 1), op("resume", 1),
        op("resume", 1), op("resume", 1), op("resume", 0), op("swap", 0, 1), op("move_assign", 0, 1),
        make(2, 0, 0), op("resume", 2), op("drop", 0)))


def _composed(name):
    """The shapes of the seeded composition schedules, plus pauses, moves and awaits,
    with ops available before make_from."""
    return Schedule(name, (
        make(0, 0, 1), make(1, 1, 2), op("resume", 1), op("await", 1), op("resume", 1),
        op("resume", 1), make(2, 1, 1), op("move", 2, 3), op("move_assign", 3, 0),
        op("await", 0), make(4, 0, 5), op("swap", 4, 1), op("drop", 4), op("resume", 0),
        make(5, 1, 3), op("await", 5), op("drop", 5)))


def _threaded(name):
    """The seeded threaded schedules' shapes (without their preemptions), and waiters,
    a when_all and drops spread over two threads."""
    with_sigs = dict(slots=4, threads=2, combinators=(WHEN_ALL,), custom_ops=(SPAWN,))
    return [
        Schedule(name, (make(0), op("copy", 0, 1), op("send", 1, 1), op("drop", 0)), **with_sigs),
        Schedule(name, (make(0), op("copy", 0, 1), op("send", 1, 1), op("call", 0, 0, 0, -1),
                        op("resume", 1, thread=1)), **with_sigs),
        Schedule(name, (make(0, 0, 1), make(1, 0, 2), op("copy", 1, 2), op("send", 2, 1),
                        op("make_from", 3, 0, 0, 0, 1), op("resume", 3), op("resume", 0),
                        op("resume", 2, thread=1)), **with_sigs),
        Schedule(name, (make(0, 0, 5), op("copy", 0, 1), op("send", 1, 1), op("call", 0, 0, 0, -1),
                        make(2, 0, 3), op("make_from", 3, 0, 4, 0, 2), op("call", 0, 0, 3, -1),
                        op("resume", 1, thread=1), op("resume", 3), op("drop", 3),
                        op("call", 0, 0, 1, -1, thread=1), op("resume", 0),
                        op("drop", 1, thread=1)), **with_sigs),
    ]


WHEN_ALL = sched.Signature("when_all", ("copy", "copy"), 0, 9)
SPAWN = sched.Signature("spawn_waiter", ("ref",), 0, 0)

CLEAN = {
    "task": [_task_like("task", 2, awaitable=True)],
    "compose-task": [_composed("compose-task")],
    "eager-task": [_composed("eager-task")],
    "shared-awaitable": [_composed("shared-awaitable"), Schedule("shared-awaitable", (
        make(0, 1, 2), op("copy", 0, 1), op("await", 0), op("await", 1), op("copy", 1, 2),
        op("resume", 2), op("copy_assign", 0, 0), op("swap", 1, 2), op("drop", 0),
        op("resume", 1), op("resume", 1), op("move_assign", 1, 2), op("await", 2)))],
    "chain-task": [_task_like("chain-task", awaitable=True),
                   Schedule("chain-task", (make(0, 0, 20000), op("resume", 0))),
                   Schedule("chain-task", (make(0, 0, 5000), make(1, 0, 3), op("await", 0)))],
    "greeting-task": [_task_like("greeting-task")],
    "generator": [_generator("generator")],
    "shared-task": [_shared("shared-task")],
    "shared-task-fence": [_shared("shared-task-fence")],
    "async-task": _threaded("async-task"),
}


def test_every_correct_target_has_clean_schedules_here():
    assert set(CLEAN) == {t.name for t in targets.builtin_targets() if not t.bug_class}


@pytest.mark.parametrize("sanitizer", ["asan", "none"])
@pytest.mark.parametrize("name", sorted(CLEAN))
def test_correct_twin_replays_clean(sessions, name, sanitizer):
    session = sessions(name, sanitizer)
    for s in CLEAN[name]:
        outcome = session.run(s)
        assert outcome.ok, (s.render(session.factory_names), outcome.findings)
        # The schedule really ran: every op finished, and the frames it made were freed.
        done = [e for e in outcome.raw.events if e[0] == 11]  # EV_OP_DONE
        assert len({e[1] for e in done if e[1] < len(s.ops)}) == len(s.ops)


@pytest.mark.parametrize("name", ["copyable-task", "move-keeps-source-task"])
def test_twin_schedules_would_catch_the_bug(sessions, name):
    """The clean schedules are not vacuous: run the same shapes on a seeded target."""
    s = sched.load(str(SCHEDULES / f"{name}.json"))
    assert not sessions(name, "none").run(s).ok


def test_threads_metadata_is_the_default_of_a_campaign(tmp_path):
    """`// stresscoro: threads=N` sets the schedule threads of the target's campaigns
    (fuzz and explore) when --threads is not given; --threads still wins."""
    from stresscoro.runner import Campaign, default_threads

    adapter = tmp_path / "two_threads.cpp"
    adapter.write_text("// stresscoro: name=two-threads\n// stresscoro: threads=3\n"
                       "#include <stresscoro/adapter.hpp>\n")
    target = targets.from_adapter(adapter)
    assert target.threads == 3 and target.to_json()["threads"] == 3
    assert [default_threads(s, target) for s in ("asan", "tsan", "none")] == [3, 3, 3]
    assert (default_threads("asan"), default_threads("tsan")) == (1, 2)
    plain = targets.get("task")
    assert plain.threads is None and default_threads("asan", plain) == 1
    # A campaign is not built until it runs: reading its options costs no compile.
    assert Campaign(target, "asan")._strategy_options["threads"] == 3
    assert Campaign(target, "asan", threads=1)._strategy_options["threads"] == 1
    assert Campaign(plain, "tsan")._strategy_options["threads"] == 2
    for t in targets.builtin_targets():
        if t.bug_class in ("check-then-act-release", "lost-wakeup", "when-all-counter"):
            assert t.threads == 2, t.name
