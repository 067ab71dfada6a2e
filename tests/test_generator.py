"""The native schedule generator (native/include/stresscoro/generator.hpp) and the
Python model (strategies) are one legality model written twice: every schedule the C++
side draws, from a seed or from any byte string, is accepted unchanged by the Python
model, on every built-in target. And a schedule either side draws has a choice
sequence (strategies.schedule_choices) from which the Hypothesis strategy draws it
again: what the example database keeps for `fuzz` to replay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stresscoro import explore, targets
from stresscoro.explore import NativeProgram, decode
from stresscoro.runner import _drawn_from
from stresscoro import schedule as sched
from stresscoro.schedule import InvalidSchedule, Preemption, Schedule, make, op
from stresscoro.strategies import (DEFAULT_MAX_OPS, MAX_DRAWN_AFTER, MAX_DRAWN_PREEMPTIONS, rebuild,
                                   schedule_choices, schedules, schedules_for, session_arguments)

GENERATOR = (Path(__file__).resolve().parent.parent / "native" / "include" / "stresscoro"
             / "generator.hpp")

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


def test_native_draws_on_two_threads_carry_preemptions_accepted_unchanged():
    p = program("relaxed-shared-task")
    for drawn in (p.generate(1000, DRAWS, threads=2), p.generate(7000, DRAWS, threads=3)):
        preempted = [s for s in drawn if s.preemptions]
        assert len(preempted) >= DRAWS // 4  # half of them draw at least one
        assert max(len(s.preemptions) for s in drawn) == MAX_DRAWN_PREEMPTIONS
        assert {p.after for s in drawn for p in s.preemptions} == set(
            range(1, MAX_DRAWN_AFTER + 1))
        _accepted(p, preempted)
    # Only with two threads or more.
    assert not any(s.preemptions for s in p.generate(1000, DRAWS, threads=1))
    # A byte string long enough for the ops to stop at --max-ops reaches them too.
    assert any(s.preemptions for s in p.generate(1, DRAWS, threads=2, max_ops=4,
                                                    from_bytes=True))


def test_native_preemptions_go_to_every_other_thread_lowest_first():
    drawn = program("relaxed-shared-task").generate(1, DRAWS, threads=3)
    seen = {(s.ops[p.op].thread, p.to) for s in drawn for p in s.preemptions}
    assert {(0, 1), (0, 2)} <= seen
    assert all(t != to for t, to in seen)


def test_native_draws_are_encoded_version_3_exactly_when_they_have_preemptions():
    p = program("relaxed-shared-task")
    out = p._run("gen", "1000", "200", "--threads", "2")
    for line in out.splitlines():
        words = [int(w) for w in line.split()]
        s = p.decode_ints(words)
        assert words[1] == (3 if s.preemptions else 2)
        assert s.encode() == words  # Python writes what the generator writes


def test_the_generators_draw_limits_are_the_strategys():
    text = GENERATOR.read_text()

    def constant(name: str) -> int:
        m = re.search(r"constexpr int " + name + r" = (\d+);", text)
        assert m, name
        return int(m.group(1))

    assert constant("max_drawn_preemptions") == MAX_DRAWN_PREEMPTIONS
    assert constant("max_drawn_after") == MAX_DRAWN_AFTER
    assert constant("encoding_plain") == sched.ENCODING_VERSION_PLAIN
    assert constant("encoding_preempted") == sched.ENCODING_VERSION
    assert MAX_DRAWN_PREEMPTIONS <= sched.MAX_PREEMPTIONS
    assert MAX_DRAWN_AFTER <= sched.MAX_AFTER
    # The explorer's shared area holds the longest schedule it runs: the driver's most
    # preemptions (what its interleavings give a drawn schedule).
    assert explore.AREA_SCHEDULE_WORDS == (6 + sched.OP_WORDS * sched.MAX_OPS
                                           + sched.PREEMPTION_WORDS * sched.MAX_PREEMPTIONS)
    assert re.search(r"area_schedule_words = 6 \+ op_words \* max_ops \+ preempt_words \* "
                     r"max_preemptions;", (GENERATOR.parent / "explore.hpp").read_text())


def test_rebuild_keeps_preemptions_on_their_ops_and_drops_those_of_ops_left_out():
    d = program("task").description
    s = Schedule("task", (make(0), make(1, thread=1), op("drop", 1, thread=1), make(2)),
                 threads=2, preemptions=(Preemption(2, 1, 0), Preemption(3, 2, 1)))
    assert rebuild(s, d["factories"], d["rules"]) == s
    # The second probe of one object breaks a declared precondition: the model leaves it
    # out, and its preemption with it; the drop after it moves up with its own.
    twice = Schedule("task", (make(0), op("probe", 1, 0), op("probe", 2, 0), op("drop", 1)),
                     threads=2, preemptions=(Preemption(1, 1, 1), Preemption(2, 1, 1),
                                             Preemption(3, 2, 1)))
    back = rebuild(twice, d["factories"], d["rules"])
    assert back.ops == (make(0), op("probe", 1, 0), op("drop", 1))
    assert back.preemptions == (Preemption(1, 1, 1), Preemption(2, 2, 1))


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


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=20, max_size=120))
def test_every_byte_string_decodes_to_a_legal_schedule_with_preemptions(tmp_path_factory, data):
    p = program("relaxed-shared-task")
    f = tmp_path_factory.mktemp("bytes") / "input"
    f.write_bytes(data)
    _accepted(p, [p.decode_file(f, threads=3, max_ops=3)])


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
        drawn = _drawn_from(strategy, choices_of(s))
        assert (drawn.ops, drawn.preemptions) == (s.ops, s.preemptions), "\n".join(
            s.render() + s.render_preemptions())
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
