"""The native schedule generator (native/include/stresscoro/generator.hpp) and the
Python model (strategies) are one legality model written twice: every schedule the C++
side draws, from a seed or from any byte string, is accepted unchanged by the Python
model, on every built-in target. And a schedule either side draws has a choice
sequence (strategies.schedule_choices) from which the Hypothesis strategy draws it
again: what the example database keeps for `fuzz` to replay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stresscoro import targets
from stresscoro.explore import NativeProgram, decode
from stresscoro.runner import _drawn_from
from stresscoro.schedule import InvalidSchedule, Schedule, make
from stresscoro.strategies import (DEFAULT_MAX_OPS, rebuild, schedule_choices, schedules, schedules_for,
                                   session_arguments)

DRAWS = 400  # per target, per source (seeds, byte strings), per thread setting

_programs: dict[str, NativeProgram] = {}


def program(name: str) -> NativeProgram:
    if name not in _programs:
        _programs[name] = NativeProgram(targets.get(name), "none")
    return _programs[name]


def spread(description: dict) -> bool:
    """A composition target (combinators or custom ops): both sides spread draws."""
    return bool(description.get("combinators") or description.get("custom_ops"))


def _accepted(p: NativeProgram, drawn) -> None:
    d = p.description
    for s in drawn:
        assert rebuild(s, d["factories"], d["rules"], spread=spread(d)) == s, "\n".join(s.render())


@pytest.mark.parametrize("name", [t.name for t in targets.builtin_targets()])
def test_every_native_draw_is_accepted_unchanged_by_the_python_model(name):
    p = program(name)
    for threads in (1, 2):
        _accepted(p, p.generate(1000, DRAWS, threads=threads))
        _accepted(p, p.generate(5000, DRAWS, threads=threads, from_bytes=True))


def test_native_draws_cover_the_op_set_of_a_composition_target():
    p = program("compose-task")
    seen = {o.name for s in p.generate(1, DRAWS) for o in s.ops}
    assert {"make", "make_from", "probe", "resume", "drop", "move"} <= seen


def test_a_changed_draw_is_rejected_by_the_python_model():
    """The check can fail: a probe moved onto a live slot is steered away by the model."""
    p = program("task")
    d = p.description
    s = decode("task", [0x5343, 2, 3, 1, 2, 1, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0])
    assert [o.name for o in s.ops] == ["make", "probe"]
    assert rebuild(s, d["factories"], d["rules"]) != s


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=80))
def test_every_byte_string_decodes_to_a_legal_schedule(tmp_path_factory, data):
    p = program("compose-task")
    f = tmp_path_factory.mktemp("bytes") / "input"
    f.write_bytes(data)
    _accepted(p, [p.decode_file(f)])


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_the_python_model_accepts_its_own_draws_unchanged(data):
    p = program("compose-task")
    d = p.description
    combinators, custom_ops = p.signatures()
    caps = {"make", "copy", "move", "resume", "drop", "probe", "make_from", "swap",
            "move_assign", "copy_assign"}
    s = data.draw(schedules("compose-task", caps, d["factories"], rules=d["rules"],
                            combinators=combinators, custom_ops=custom_ops))
    assert rebuild(s, d["factories"], d["rules"], spread=True) == s


# -- the choices the strategy draws a schedule from -------------------------------------

# Plain, composition (make_from, probe, swarm op subsets) and cross-thread (send) targets.
REPLAYED = [("task", 1), ("copyable-task", 1), ("compose-task", 1),
            ("dangling-when-all-task", 1), ("overwritten-awaiter-task", 1),
            ("relaxed-shared-task", 2)]


def _strategy_and_choices(session, threads: int):
    strategy = schedules_for(session, threads=threads)
    return strategy, lambda s: schedule_choices(s, **session_arguments(session, threads=threads))


@pytest.mark.parametrize("name,threads", REPLAYED)
def test_every_native_draw_replays_from_its_choices_through_the_strategy(sessions, name,
                                                                         threads):
    strategy, choices_of = _strategy_and_choices(sessions(name, "none"), threads)
    replayed = 0
    for s in program(name).generate(1000, DRAWS, threads=threads):
        if not 1 <= len(s.ops) <= DEFAULT_MAX_OPS:
            # Empty, or made longer than the strategy's list by the makes a make_from
            # draws for its inputs: no choice sequence gives it.
            with pytest.raises(InvalidSchedule):
                choices_of(s)
            continue
        assert _drawn_from(strategy, choices_of(s)).ops == s.ops, "\n".join(s.render())
        replayed += 1
    assert replayed >= DRAWS * 0.9


@pytest.mark.parametrize("name,threads", REPLAYED)
def test_every_strategy_draw_replays_from_its_choices(sessions, name, threads):
    strategy, choices_of = _strategy_and_choices(sessions(name, "none"), threads)

    @settings(max_examples=150, deadline=None, database=None)
    @given(strategy)
    def replays(s):
        if 1 <= len(s.ops) <= DEFAULT_MAX_OPS:
            assert _drawn_from(strategy, choices_of(s)) == s

    replays()


def test_a_schedule_the_model_would_steer_has_no_choices(sessions):
    """The check can fail: a probe onto a live slot is not what the strategy draws."""
    session = sessions("task", "none")
    s = decode("task", [0x5343, 2, 3, 1, 2, 1, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0])
    with pytest.raises(InvalidSchedule, match="does not draw this schedule"):
        schedule_choices(s, session.capabilities, session.factories, rules=session.rules)
    # Longer than the strategy's lists, or beyond its slots: none either.
    two = Schedule("task", (make(0), make(2)), slots=3)
    assert schedule_choices(two, session.capabilities, session.factories, rules=session.rules)
    with pytest.raises(InvalidSchedule):
        schedule_choices(two, session.capabilities, session.factories, rules=session.rules,
                         max_ops=1)
    with pytest.raises(InvalidSchedule):
        schedule_choices(two, session.capabilities, session.factories, rules=session.rules,
                         slots=2)
