"""Fast unit tests of the Schedule data model, and of the numbers Python and C++ share."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stresscoro import oracle, worker
from stresscoro import schedule as sched
from stresscoro.schedule import OPS, InvalidSchedule, Op, Preemption, Schedule, make, op

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "native" / "include" / "stresscoro"


def doc(ops, **top):
    """A schedule document as `stresscoro replay` reads it."""
    return {"format": "stresscoro-schedule", "version": 1, "target": "task", **top, "ops": ops}


def rich() -> Schedule:
    """Several op kinds, three threads, a hand-off between them."""
    return Schedule("shared-task", (
        make(0, 1, 7),
        op("copy", 0, 1),
        op("copy_assign", 1, 1),
        op("move", 1, 2),
        op("move_assign", 2, 3),
        op("swap", 0, 2),
        op("resume", 0),
        op("touch", 1),
        op("send", 1, 2),
        op("touch", 1, thread=2),
        op("await", 0),
        op("drop", 1, thread=2),
        make(5, thread=1),
        op("drop", 0),
    ))


# -- round trip and layout ----------------------------------------------------------


def test_json_round_trip_keeps_every_op_thread_and_size():
    s = rich()
    text = s.dumps()
    back = sched.loads(text)
    assert back == s
    assert back.dumps() == text
    data = json.loads(text)
    assert data["format"] == "stresscoro-schedule" and data["version"] == 3
    assert "preemptions" not in data  # left out when there are none
    assert data["target"] == "shared-task"
    assert (data["slots"], data["threads"]) == (6, 3)
    assert data["ops"][0] == {"op": "make", "slot": 0, "factory": 1, "arg": 7}
    assert data["ops"][9] == {"op": "touch", "slot": 1, "thread": 2}
    assert "thread" not in data["ops"][1]  # thread 0 is the default and is left out


def test_round_trip_keeps_explicit_slots_and_threads():
    s = Schedule("task", (make(0), op("resume", 0)), slots=4, threads=3)
    back = sched.loads(s.dumps())
    assert (back.slots, back.threads) == (4, 3)
    assert back == s


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(rich().dumps())
    assert sched.load(str(path)) == rich()


def test_factory_and_arg_default_to_zero():
    s = sched.from_json(doc([{"op": "make", "slot": 2}]))
    assert s.ops == (make(2, 0, 0),)


def test_encode_layout():
    s = Schedule("t", (make(1, 2, 3), op("copy", 1, 0), op("resume", 0, thread=0),
                       op("send", 0, 1), op("drop", 0, thread=1)))
    enc = s.encode()
    assert enc[:5] == [0x5343, 2, 2, 2, 5]
    assert len(enc) == 5 + 7 * len(s.ops)
    body = [enc[5 + 7 * i: 12 + 7 * i] for i in range(len(s.ops))]
    assert body == [
        [OPS["make"].code, 0, 1, 2, 3, 0, 0],
        [OPS["copy"].code, 0, 1, 0, 0, 0, 0],  # two args, padded with zeros
        [OPS["resume"].code, 0, 0, 0, 0, 0, 0],
        [OPS["send"].code, 0, 0, 1, 0, 0, 0],
        [OPS["drop"].code, 1, 0, 0, 0, 0, 0],
    ]
    assert all(isinstance(v, int) for v in enc)


def test_encode_empty_schedule():
    assert Schedule("t", ()).encode() == [0x5343, 2, 1, 1, 0]


def test_derived_slots_and_threads():
    s = Schedule("t", (make(3), op("copy", 3, 5), op("send", 5, 4)))
    assert s.slots == 6  # highest slot used, plus one
    assert s.threads == 5  # a send's destination counts as a thread
    empty = Schedule("t", ())
    assert (empty.slots, empty.threads) == (1, 1)
    assert len(s) == 3


def test_explicit_slots_and_threads_win():
    s = Schedule("t", (make(0),), slots=8, threads=2)
    assert (s.slots, s.threads) == (8, 2)


def test_render_names_factories_and_threads():
    s = Schedule("t", (make(0, 1, 4), op("send", 0, 1), op("resume", 0, thread=1)))
    assert s.render(["plain", "throwing"]) == [
        "make(0, factory=throwing, arg=4)", "send(0, to=1)", "resume(0) @t1"]


# -- validation: every malformed input names where it is ------------------------------


def test_invalid_schedule_is_a_value_error_with_attributes():
    assert issubclass(InvalidSchedule, ValueError)
    with pytest.raises(InvalidSchedule) as info:
        sched.from_json(doc([{"op": "make", "slot": 0}, {"op": "resume", "slot": "x"}]))
    e = info.value
    assert isinstance(e, ValueError)
    assert (e.index, e.field, e.value) == (1, "slot", "x")
    assert "op 1" in str(e) and "'slot'" in str(e) and "'x'" in str(e)


def _invalid(data) -> InvalidSchedule:
    with pytest.raises(InvalidSchedule) as info:
        sched.from_json(data)
    return info.value


def _names(e: InvalidSchedule, index, field, value) -> None:
    """The exception and its message both name the op index, the field and the value."""
    msg = str(e)
    assert (e.index, e.field, e.value) == (index, field, value), msg
    if index is not None:
        assert f"op {index}" in msg, msg
    assert repr(field) in msg, msg
    assert repr(value) in msg, msg


OK_OP = {"op": "make", "slot": 0}


@pytest.mark.parametrize("bad_op, field, value, words", [
    ({"op": "frobnicate", "slot": 0}, "op", "frobnicate", ["unknown op", "make", "resume"]),
    ({"slot": 0}, "op", None, ["unknown op"]),
    ({"op": "copy", "src": 0}, "dst", None, ["integer"]),
    ({"op": "resume", "slot": "0"}, "slot", "0", ["integer"]),
    ({"op": "resume", "slot": 1.0}, "slot", 1.0, ["integer"]),
    ({"op": "resume", "slot": True}, "slot", True, ["integer"]),
    ({"op": "make", "slot": 0, "arg": False}, "arg", False, ["integer"]),
    ({"op": "resume", "slot": 0, "thread": True}, "thread", True, ["thread"]),
    ({"op": "resume", "slot": 0, "thread": -1}, "thread", -1, ["thread"]),
    ({"op": "resume", "slot": 0, "thread": "1"}, "thread", "1", ["thread"]),
    ({"op": "resume", "slot": 0, "depth": 3}, "depth", 3, ["resume takes slot"]),
    ({"op": "make", "slot": 0, "factory": -1}, "factory", -1, [">= 0"]),
    ({"op": "make", "slot": 0, "arg": -5}, "arg", -5, [">= 0"]),
    ({"op": "resume", "slot": -1}, "slot", -1, ["slot must be"]),
    ("make", "op", "make", ["expected an object"]),
])
def test_malformed_op_names_index_field_and_value(bad_op, field, value, words):
    e = _invalid(doc([OK_OP, bad_op]))
    _names(e, 1, field, value)
    for w in words:
        assert w in str(e)


def test_slot_out_of_range_of_declared_slots():
    e = _invalid(doc([OK_OP, {"op": "copy", "src": 0, "dst": 4}], slots=4))
    _names(e, 1, "dst", 4)
    assert "0..3" in str(e)


def test_slot_beyond_the_driver_limit_names_the_op():
    e = _invalid(doc([OK_OP, {"op": "make", "slot": sched.MAX_SLOTS}]))
    _names(e, 1, "slot", sched.MAX_SLOTS)
    assert f"0..{sched.MAX_SLOTS - 1}" in str(e)


def test_thread_out_of_range_of_declared_threads():
    e = _invalid(doc([OK_OP, {"op": "make", "slot": 1, "thread": 2}], threads=2))
    _names(e, 1, "thread", 2)
    assert "0..1" in str(e)


def test_send_to_a_thread_that_does_not_exist():
    e = _invalid(doc([OK_OP, {"op": "send", "slot": 0, "to": 3}], threads=2))
    _names(e, 1, "to", 3)
    assert "0..1" in str(e)


def test_send_beyond_the_driver_limit_names_the_op():
    e = _invalid(doc([OK_OP, {"op": "send", "slot": 0, "to": sched.MAX_THREADS}]))
    _names(e, 1, "to", sched.MAX_THREADS)


def test_thread_beyond_the_driver_limit_names_the_op():
    e = _invalid(doc([OK_OP, {"op": "make", "slot": 1, "thread": sched.MAX_THREADS + 3}]))
    _names(e, 1, "thread", sched.MAX_THREADS + 3)


def test_op_on_a_slot_held_by_another_thread_says_send_it_first():
    e = _invalid(doc([OK_OP, {"op": "resume", "slot": 0, "thread": 1}]))
    _names(e, 1, "slot", 0)
    assert "held by thread 0" in str(e)
    assert "send it first" in str(e)


def test_copy_into_a_slot_held_by_another_thread_is_rejected():
    e = _invalid(doc([OK_OP, {"op": "make", "slot": 1, "thread": 1},
                      {"op": "copy", "src": 0, "dst": 1}]))
    _names(e, 2, "dst", 1)
    assert "send it first" in str(e)


@pytest.mark.parametrize("top, field, value, words", [
    ({"format": "something-else"}, "format", "something-else", ["stresscoro-schedule"]),
    ({"format": None}, "format", None, ["stresscoro-schedule"]),
    ({"version": 4}, "version", 4, ["versions 1, 2, 3"]),
    ({"version": "1"}, "version", "1", ["version"]),
    ({"target": ""}, "target", "", ["target"]),
    ({"target": None}, "target", None, ["target"]),
    ({"slots": 0.5}, "slots", 0.5, ["integer"]),
    ({"threads": True}, "threads", True, ["integer"]),
    ({"slots": sched.MAX_SLOTS + 1}, "slots", sched.MAX_SLOTS + 1, [f"1..{sched.MAX_SLOTS}"]),
    ({"threads": -1}, "threads", -1, [f"1..{sched.MAX_THREADS}"]),
    ({"ops": {"op": "make"}}, "ops", {"op": "make"}, ["list"]),
])
def test_malformed_top_level_names_field_and_value(top, field, value, words):
    data = doc([OK_OP])
    data.update(top)
    e = _invalid(data)
    _names(e, None, field, value)
    for w in words:
        assert w in str(e)


def test_missing_ops_list():
    data = doc([])
    del data["ops"]
    _names(_invalid(data), None, "ops", None)


def test_too_many_ops():
    e = _invalid(doc([{"op": "resume", "slot": 0}] * (sched.MAX_OPS + 1)))
    assert e.field == "ops" and e.value == sched.MAX_OPS + 1


@pytest.mark.parametrize("text", ["{bad", "", "[1, 2", "{\"format\": }"])
def test_not_json(text):
    with pytest.raises(InvalidSchedule) as info:
        sched.loads(text)
    assert str(info.value).startswith("schedule: not valid JSON: ")
    assert "line 1" in str(info.value)


@pytest.mark.parametrize("text", ["[]", "[{\"op\": \"make\"}]", "42", "\"make\"", "null"])
def test_top_level_not_an_object(text):
    with pytest.raises(InvalidSchedule) as info:
        sched.loads(text)
    assert "JSON object" in str(info.value)
    assert info.value.index is None


def test_load_of_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        sched.load(str(tmp_path / "nope.json"))


def test_op_constructor_checks_name_and_arity():
    with pytest.raises(InvalidSchedule) as info:
        Op("frobnicate", (0,))
    assert (info.value.field, info.value.value) == ("op", "frobnicate")
    with pytest.raises(InvalidSchedule) as info:
        Op("copy", (0,))
    assert info.value.field == "args" and "src, dst" in str(info.value)


def test_schedule_constructor_validates_too():
    with pytest.raises(InvalidSchedule) as info:
        Schedule("t", (make(0), op("drop", 0, thread=1)))
    assert info.value.index == 1 and "send it first" in str(info.value)
    with pytest.raises(InvalidSchedule):
        Schedule("t", (make(0, 0, -1),))
    with pytest.raises(InvalidSchedule):
        Schedule("", (make(0),))


# -- the ownership model --------------------------------------------------------------


def test_simulate_transfers_ownership_with_send():
    s = Schedule("t", (make(0), op("copy", 0, 1), op("send", 1, 1),
                       op("touch", 1, thread=1), op("drop", 1, thread=1), op("drop", 0)))
    states = s.simulate()
    assert len(states) == len(s.ops)
    assert states[0][0] == sched.SlotState(True, 0, born=0)
    assert states[1][1] == sched.SlotState(True, 0, born=1)
    assert states[2][1] == sched.SlotState(True, 1, born=1)  # after send: thread 1 holds slot 1
    assert states[2][0] == sched.SlotState(True, 0, born=0)  # the other slot stays with thread 0
    assert states[4][1] == sched.SlotState(False, 1)
    assert states[5][0] == sched.SlotState(False, 0)


def test_after_a_send_the_sender_may_not_use_the_slot():
    ops = (make(0), op("send", 0, 1), op("resume", 0))
    with pytest.raises(InvalidSchedule) as info:
        Schedule("t", ops)
    _names(info.value, 2, "slot", 0)
    assert "held by thread 1" in str(info.value) and "send it first" in str(info.value)


def test_a_slot_can_be_sent_back():
    s = Schedule("t", (make(0), op("send", 0, 1), op("send", 0, 0, thread=1), op("resume", 0)))
    assert s.simulate()[-1][0] == sched.SlotState(True, 0, born=0)


def test_send_of_an_empty_slot_transfers_nothing():
    # The driver skips a send of an empty slot, so the sender still holds it.
    s = Schedule("t", (make(0), op("drop", 0), op("send", 0, 1), make(0)))
    assert s.simulate()[2][0] == sched.SlotState(False, 0)
    with pytest.raises(InvalidSchedule):
        Schedule("t", (make(0), op("drop", 0), op("send", 0, 1), make(0, thread=1)))


def test_move_and_copy_take_the_destination_for_their_thread():
    s = Schedule("t", (make(0, thread=1), op("move", 0, 3, thread=1)))
    assert s.simulate()[-1][3] == sched.SlotState(True, 1, born=1)


# -- target checks -----------------------------------------------------------------


FACTORIES = [{"name": "plain", "min": 0, "max": 0}, {"name": "counted", "min": 1, "max": 10}]


def test_check_target_accepts_supported_ops():
    s = Schedule("task", (make(0, 1, 10), op("resume", 0), op("drop", 0)))
    s.check_target({"make", "resume", "drop", "move"}, FACTORIES)


def test_check_target_rejects_an_unsupported_op():
    s = Schedule("task", (make(0), op("copy", 0, 1)))
    with pytest.raises(InvalidSchedule) as info:
        s.check_target({"make", "drop", "move", "send"}, FACTORIES)
    _names(info.value, 1, "op", "copy")
    assert "does not support copy" in str(info.value)
    assert "drop, make, move, send" in str(info.value)  # what it does support


def test_check_target_rejects_a_factory_that_does_not_exist():
    s = Schedule("task", (make(0, 2),))
    with pytest.raises(InvalidSchedule) as info:
        s.check_target(OPS, FACTORIES)
    _names(info.value, 0, "factory", 2)
    assert "2 factories" in str(info.value)


@pytest.mark.parametrize("factory, arg", [(0, 1), (1, 0), (1, 11)])
def test_check_target_rejects_a_factory_argument_out_of_range(factory, arg):
    s = Schedule("task", (make(0), make(1, factory, arg)))
    with pytest.raises(InvalidSchedule) as info:
        s.check_target(OPS, FACTORIES)
    _names(info.value, 1, "arg", arg)
    lo, hi = FACTORIES[factory]["min"], FACTORIES[factory]["max"]
    assert f"{FACTORIES[factory]['name']!r} takes {lo}..{hi}" in str(info.value)


# -- Python and C++ agree on the numbers they share -------------------------------------


def _enum(header: Path, name: str, prefix: str) -> dict[str, int]:
    """`enum NAME : int { prefix_x = 1, ... }` from a header, as {"x": 1, ...}."""
    text = header.read_text()
    m = re.search(r"enum\s+" + name + r"\s*(?::\s*\w+\s*)?\{(.*?)\};", text, re.S)
    assert m, f"no enum {name} in {header}"
    body = re.sub(r"//[^\n]*", "", m.group(1))
    found = dict(re.findall(r"\b" + prefix + r"(\w+)\s*=\s*(-?\d+)", body))
    assert found, f"enum {name} in {header} has no {prefix}* values"
    return {k: int(v) for k, v in found.items()}


def _constant(header: Path, name: str) -> int:
    m = re.search(r"constexpr\s+[\w ]+\s+" + name + r"\s*=\s*(0x[0-9a-fA-F]+|\d+)", header.read_text())
    assert m, f"no constant {name} in {header}"
    return int(m.group(1), 0)


def test_op_codes_match_the_driver():
    native = _enum(INCLUDE / "driver.hpp", "op_code", "op_")
    count = native.pop("code_count")
    assert native == {name: spec.code for name, spec in OPS.items()}
    assert count == max(spec.code for spec in OPS.values()) + 1
    assert sched.CODE_TO_NAME == {v: k for k, v in native.items()}


def test_schedule_limits_match_the_driver():
    driver = INCLUDE / "driver.hpp"
    assert _constant(driver, "schedule_magic") == sched._MAGIC == 0x5343
    # The driver reads version 2 and, with preemptions, version 3 (its newest).
    assert _constant(driver, "schedule_version") == sched.ENCODING_VERSION
    assert _constant(driver, "max_preemptions") == sched.MAX_PREEMPTIONS
    assert _constant(driver, "max_after") == sched.MAX_AFTER
    assert _constant(driver, "max_slots") == sched.MAX_SLOTS
    assert _constant(driver, "max_threads") == sched.MAX_THREADS
    assert _constant(driver, "max_ops") == sched.MAX_OPS


def test_event_kinds_match_the_oracle():
    native = _enum(INCLUDE / "detail" / "event_log.hpp", "event_kind", "ev_")
    python = {k[3:].lower(): v for k, v in vars(oracle).items()
              if re.fullmatch(r"EV_[A-Z_]+", k) and isinstance(v, int)}
    assert python == native


def test_header_words_match_the_worker():
    header = INCLUDE / "detail" / "event_log.hpp"
    native = _enum(header, "header_word", "hw_")
    python = {k[3:].lower(): v for k, v in vars(worker).items()
              if re.fullmatch(r"HW_[A-Z_]+", k) and isinstance(v, int)}
    assert python, "worker.py names no HW_* header words"
    for name, value in python.items():
        assert native.get(name) == value, f"HW_{name.upper()}"
    # Every header word the worker does not name is one it has no use for.
    assert set(native) - set(python) <= {"magic", "words"}
    assert native["words"] == worker.HEADER_WORDS
    assert _constant(header, "event_words") == worker.EVENT_WORDS


def test_run_errors_match_the_worker():
    native = _enum(INCLUDE / "driver.hpp", "run_error", "err_")
    assert set(native.values()) == set(worker.RUN_ERRORS)


# -- composition ops (version 2) -----------------------------------------------------

AWAIT_IT = sched.Signature("await_it", ("move",))
WHEN_ALL = sched.Signature("when_all", ("ref", "ref"), 0, 3)
SPAWN = sched.Signature("spawn", ("consume",))
POLL = sched.Signature("poll", ())


def composed() -> Schedule:
    return Schedule("lib", (
        make(0), make(1),
        op("make_from", 2, 1, 2, 0, 1),      # 2 = when_all(0, 1), arg 2
        op("make_from", 3, 0, 0, 2, -1),     # 3 = await_it(move 2)
        op("probe", 4, 3),
        op("call", 0, 0, 3, -1),             # spawn(3): consumed
        op("call", 1, 0, -1, -1),            # poll()
        op("step"),
        op("drop", 4),
    ), combinators=(AWAIT_IT, WHEN_ALL), custom_ops=(SPAWN, POLL))


def test_composition_ops_round_trip_with_their_signatures():
    s = composed()
    data = json.loads(s.dumps())
    assert data["version"] == 3
    assert data["combinators"][1] == {"name": "when_all", "inputs": ["ref", "ref"], "min": 0, "max": 3}
    assert data["ops"][3] == {"op": "make_from", "dst": 3, "combinator": 0, "arg": 0, "src": 2}
    assert data["ops"][6] == {"op": "call", "fn": 1, "arg": 0}  # unused slots left out
    assert data["ops"][7] == {"op": "step"}
    assert sched.loads(s.dumps()) == s


def test_composition_ops_encode_seven_words_with_minus_one_for_unused_slots():
    enc = composed().encode()
    body = [enc[5 + 7 * i: 12 + 7 * i] for i in range(len(composed().ops))]
    assert body[2] == [OPS["make_from"].code, 0, 2, 1, 2, 0, 1]
    assert body[3] == [OPS["make_from"].code, 0, 3, 0, 0, 2, -1]
    assert body[6] == [OPS["call"].code, 0, 1, 0, -1, -1, 0]
    assert body[7] == [OPS["step"].code, 0, 0, 0, 0, 0, 0]


def test_simulate_tracks_consumed_inputs_and_probe_slots():
    after = composed().simulate()
    assert after[3][3].live and after[3][2].live  # move leaves a moved-from object
    assert after[4][4].probe and not after[4][4].live
    assert not after[5][3].live  # spawn consumed it
    assert not after[8][4].probe


def test_render_names_combinators_and_custom_ops():
    lines = composed().render()
    assert lines[2] == "make_from(2 = when_all(0, 1, arg=2))"
    assert lines[3] == "make_from(3 = await_it(2))"
    assert lines[5] == "spawn(3)"
    assert lines[6] == "poll()"
    assert lines[4] == "probe(4, 3)"


def test_version_1_file_still_loads_and_rejects_version_2_ops():
    old = {"format": "stresscoro-schedule", "version": 1, "target": "task",
           "ops": [{"op": "make", "slot": 0}, {"op": "await", "slot": 0}]}
    assert sched.from_json(old).ops == (make(0), op("await", 0))
    old["ops"].append({"op": "step"})
    e = _invalid(old)
    _names(e, 2, "op", "step")
    assert "version 2" in str(e)


def test_every_stored_schedule_loads_version_1_files_included():
    files = sorted((Path(__file__).parent / "schedules").glob("*.json"))
    versions = {json.loads(f.read_text())["version"] for f in files}
    assert versions == {1, 2, 3}
    for f in files:
        sched.load(str(f))


@pytest.mark.parametrize("bad, field, words", [
    (op("make_from", 2, 5, 0, 0, -1), "combinator", ["declares 2 combinators"]),
    (op("make_from", 2, 1, 0, 0, -1), "inputs", ["when_all takes 2 slot(s)"]),
    (op("make_from", 0, 0, 0, 0, -1), "dst", ["destination is also an input"]),
    (op("call", 0, 0, -1, -1), "inputs", ["spawn takes 1 slot(s)"]),
    (op("call", 7, 0, -1, -1), "fn", ["declares 2 custom ops"]),
])
def test_malformed_composition_ops_name_the_op(bad, field, words):
    with pytest.raises(InvalidSchedule) as info:
        Schedule("lib", (make(0), make(1), bad), combinators=(AWAIT_IT, WHEN_ALL),
                 custom_ops=(SPAWN, POLL))
    assert info.value.index == 2 and info.value.field == field
    for w in words:
        assert w in str(info.value)


def test_check_target_rejects_a_signature_the_target_does_not_have():
    s = composed()
    caps = set(OPS)
    target_comb = [c.to_json() for c in (AWAIT_IT, WHEN_ALL)]
    target_ops = [c.to_json() for c in (SPAWN, POLL)]
    s.check_target(caps, [{"name": "v", "min": 0, "max": 9}], target_comb, target_ops)
    changed = [dict(d) for d in target_comb]
    changed[0]["inputs"] = ["copy"]
    with pytest.raises(InvalidSchedule, match="not the target's"):
        s.check_target(caps, [{"name": "v", "min": 0, "max": 9}], changed, target_ops)


# -- preemptions (version 3) ---------------------------------------------------------


def two_threads(*preemptions: Preemption) -> Schedule:
    """Two objects, one a thread, each dropped by its holder: a drop can be preempted."""
    return Schedule("shared-task", (
        make(0),
        make(1, thread=1),
        op("copy", 0, 2),
        op("drop", 0),
        op("drop", 1, thread=1),
    ), preemptions=preemptions)


def test_preemptions_round_trip_through_json_version_3():
    s = two_threads(Preemption(2, 1, 1), Preemption(3, 1, 1), Preemption(3, 4, 1),
                    Preemption(4, 2, 0))
    text = s.dumps()
    data = json.loads(text)
    assert data["version"] == 3
    assert data["preemptions"][0] == {"op": 2, "after": 1, "to": 1}
    assert list(data)[-1] == "preemptions"  # after the ops they refer to
    back = sched.loads(text)
    assert back == s and back.preemptions == s.preemptions
    assert back.dumps() == text


def test_a_version_2_file_loads_with_no_preemptions():
    data = json.loads(two_threads().dumps())
    data["version"] = 2
    s = sched.from_json(data)
    assert s.preemptions == () and s == two_threads()
    stored = json.loads((Path(__file__).parent / "schedules" / "copyable-task.json").read_text())
    assert sched.from_json(stored).preemptions == ()


def test_a_version_2_file_may_not_carry_preemptions():
    data = json.loads(two_threads(Preemption(3, 1, 1)).dumps())
    data["version"] = 2
    e = _invalid(data)
    assert e.field == "preemptions" and "version 3 field" in str(e) and "version 2" in str(e)


@pytest.mark.parametrize("preemptions, k, field, value, words", [
    ((Preemption(5, 1, 1),), 0, "op", 5, ["op must be 0..4"]),
    ((Preemption(-1, 1, 1),), 0, "op", -1, ["op must be 0..4"]),
    ((Preemption(3, 0, 1),), 0, "after", 0, ["from 1", "1..64"]),
    ((Preemption(3, 65, 1),), 0, "after", 65, ["1..64"]),
    ((Preemption(3, 1, 2),), 0, "to", 2, ["thread must be 0..1"]),
    ((Preemption(3, 1, 0),), 0, "to", 0, ["op 3 runs on thread 0 itself"]),
    ((Preemption(4, 1, 1),), 0, "to", 1, ["op 4 runs on thread 1 itself"]),
    ((Preemption(3, 2, 1), Preemption(3, 1, 1)), 1, "after", 1, ["sorted by (op, after)"]),
    ((Preemption(3, 1, 1), Preemption(2, 1, 1)), 1, "op", 2, ["sorted by (op, after)"]),
    ((Preemption(3, 1, 1), Preemption(3, 1, 1)), 1, "after", 1, ["same op and sync point"]),
    ((Preemption(3, True, 1),), 0, "after", True, ["expected an integer"]),
])
def test_each_illegal_preemption_is_rejected_by_name(preemptions, k, field, value, words):
    with pytest.raises(InvalidSchedule) as info:
        two_threads(*preemptions)
    e = info.value
    assert (e.preemption, e.index, e.field, e.value) == (k, None, field, value)
    assert str(e).startswith(f"preemption {k}, field {field!r}={value!r}: ")
    for w in words:
        assert w in str(e)


def test_preemptions_need_two_threads():
    with pytest.raises(InvalidSchedule, match="2 or more threads") as info:
        Schedule("task", (make(0), op("drop", 0)), preemptions=(Preemption(1, 1, 0),))
    assert info.value.field == "threads" and info.value.value == 1


def test_at_most_max_preemptions():
    many = tuple(Preemption(3, a, 1) for a in range(1, sched.MAX_PREEMPTIONS + 2))
    with pytest.raises(InvalidSchedule, match=f"at most {sched.MAX_PREEMPTIONS}"):
        two_threads(*many)
    assert len(two_threads(*many[:sched.MAX_PREEMPTIONS]).preemptions) == sched.MAX_PREEMPTIONS


@pytest.mark.parametrize("raw, field, value", [
    ("x", "preemptions", "x"),
    (["x"], "preemption", "x"),
    ([{"op": 3, "after": 1, "to": 1, "thread": 0}], "thread", 0),
    ([{"op": 3, "after": "1", "to": 1}], "after", "1"),
    ([{"op": 3, "to": 1}], "after", None),
])
def test_malformed_preemptions_in_a_file_name_field_and_value(raw, field, value):
    data = json.loads(two_threads().dumps())
    data["preemptions"] = raw
    e = _invalid(data)
    assert (e.field, e.value) == (field, value)


def test_encode_version_3_layout():
    s = two_threads(Preemption(3, 1, 1), Preemption(4, 7, 0))
    enc = s.encode()
    assert enc[:6] == [0x5343, 3, 3, 2, 5, 2]
    assert len(enc) == 6 + 7 * 5 + 3 * 2
    assert enc[6:13] == [OPS["make"].code, 0, 0, 0, 0, 0, 0]
    assert enc[6 + 7 * 4: 6 + 7 * 5] == [OPS["drop"].code, 1, 1, 0, 0, 0, 0]
    assert enc[-6:] == [3, 1, 1, 4, 7, 0]
    assert sched.decode("shared-task", enc) == s


def test_a_schedule_without_preemptions_encodes_as_version_2():
    enc = two_threads().encode()
    assert enc[:5] == [0x5343, 2, 3, 2, 5] and len(enc) == 5 + 7 * 5
    assert sched.decode("shared-task", enc) == two_threads()


def test_render_preemptions_names_the_op_it_splits():
    s = two_threads(Preemption(3, 1, 1), Preemption(4, 2, 0))
    assert s.render_preemptions() == [
        "  preempt op 3 (drop(0)) after sync point 1 -> thread 1",
        "  preempt op 4 (drop(1) @t1) after sync point 2 -> thread 0"]
    assert two_threads().render_preemptions() == []


def test_deleting_ops_renumbers_preemptions_and_drops_those_of_deleted_ops():
    s = two_threads(Preemption(2, 1, 1), Preemption(3, 1, 1), Preemption(4, 2, 0))
    assert s.without_ops([2]).preemptions == (Preemption(2, 1, 1), Preemption(3, 2, 0))
    assert s.without_ops([0]).preemptions == (Preemption(1, 1, 1), Preemption(2, 1, 1),
                                              Preemption(3, 2, 0))
    assert s.without_ops([3, 4]).preemptions == (Preemption(2, 1, 1),)


def test_an_op_moved_to_the_preempting_thread_loses_its_preemption():
    s = two_threads(Preemption(2, 1, 1), Preemption(4, 2, 0))
    ops = list(s.ops)
    ops[4] = op("drop", 1, thread=0)  # now on thread 0: its hand-off to thread 0 is gone
    ops[1] = make(1)
    assert s.replace(ops=tuple(ops)).preemptions == (Preemption(2, 1, 1),)


def test_replace_with_other_ops_needs_their_origin():
    s = two_threads(Preemption(3, 1, 1))
    with pytest.raises(ValueError, match="origin="):
        s.replace(ops=s.ops[:4])
    moved = s.replace(ops=(make(2),) + s.ops, origin=[None, 0, 1, 2, 3, 4])
    assert moved.preemptions == (Preemption(4, 1, 1),)
    assert s.replace(ops=s.ops[:3] + s.ops[4:], origin=[0, 1, 2, 4]).preemptions == ()


def test_canonical_keeps_preemptions_on_the_same_ops():
    s = Schedule("shared-task", (make(2), make(0, thread=1), op("drop", 2),
                                 op("drop", 0, thread=1)),
                 preemptions=(Preemption(2, 1, 1), Preemption(3, 3, 0)))
    c = s.canonical()
    assert [o.name for o in c.ops] == [o.name for o in s.ops]
    assert c.ops[2] == op("drop", 0) and c.preemptions == s.preemptions


def test_ordered_preemptions_is_what_both_generators_normalise_to():
    ops = two_threads().ops
    drawn = [Preemption(3, 2, 1), Preemption(2, 1, 1), Preemption(3, 2, 0),
             Preemption(9, 1, 1), Preemption(3, 1, 1)]
    # Sorted by (op, after); of two at (3, 2) the first drawn; illegal ones left out.
    assert sched.ordered_preemptions(drawn, ops, 2) == (
        Preemption(2, 1, 1), Preemption(3, 1, 1), Preemption(3, 2, 1))


# Drawn by the strategy on 2 and 3 threads: the preemptions of real draws.
_CAPS = {"make", "copy", "move", "resume", "drop", "touch", "send", "swap"}
_FACTORIES = [{"name": "value", "min": 0, "max": 3}]


def _preempted_schedules():
    from hypothesis import strategies as st

    from stresscoro.strategies import schedules
    return st.sampled_from([2, 3]).flatmap(
        lambda threads: schedules("t", _CAPS, _FACTORIES, threads=threads))


def test_preemptions_survive_json_and_canonical_keeps_them_on_their_ops():
    from hypothesis import given, settings

    seen = []

    @settings(max_examples=100, database=None, deadline=None)
    @given(_preempted_schedules())
    def check(s):
        seen.append(bool(s.preemptions))
        assert sched.loads(s.dumps()) == s
        assert sched.decode(s.target, s.encode()) == s
        c = s.canonical()
        assert c.preemptions == s.preemptions
        for p in c.preemptions:  # the same op, only its slots renamed
            assert (c.ops[p.op].name, c.ops[p.op].thread) == (s.ops[p.op].name, s.ops[p.op].thread)
        assert len(s.render_preemptions()) == len(s.preemptions)

    check()
    assert any(seen) and not all(seen)


def test_hypothesis_shrinks_a_needed_preemption_to_its_simplest():
    from hypothesis import find, settings

    from stresscoro.strategies import schedules
    found = find(schedules("t", _CAPS, _FACTORIES, threads=3),
                 lambda s: any(p.after >= 3 for p in s.preemptions),
                 settings=settings(database=None, derandomize=True, max_examples=500))
    assert found.ops == (make(0),)
    assert found.preemptions == (Preemption(0, 3, 1),)
