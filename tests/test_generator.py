"""The native schedule generator (native/include/stresscoro/generator.hpp) and the
Python model (strategies) are one legality model written twice: every schedule the C++
side draws, from a seed or from any byte string, is accepted unchanged by the Python
model, on every built-in target."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stresscoro import targets
from stresscoro.explore import NativeProgram, decode
from stresscoro.strategies import rebuild, schedules

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
