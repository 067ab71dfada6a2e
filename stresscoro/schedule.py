"""The one data model: a schedule of ops over object slots and threads."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

FORMAT = "stresscoro-schedule"
VERSION = 1
MAX_SLOTS = 16
MAX_THREADS = 8
MAX_OPS = 4096
# A schedule of MAX_OPS ops takes about 250 KB as JSON; larger files are refused
# before they are read, so a huge or hostile file costs no memory.
MAX_FILE_BYTES = 1 << 20
_MAGIC = 0x5343


@dataclasses.dataclass(frozen=True)
class OpSpec:
    code: int
    fields: tuple[str, ...]
    doc: str


# The op vocabulary; codes mirror native/include/stresscoro/driver.hpp.
OPS: dict[str, OpSpec] = {
    "make": OpSpec(1, ("slot", "factory", "arg"), "construct an object in slot from a factory"),
    "copy": OpSpec(2, ("src", "dst"), "copy-construct dst from src"),
    "copy_assign": OpSpec(3, ("src", "dst"), "dst = src (self-assignment allowed)"),
    "move": OpSpec(4, ("src", "dst"), "move-construct dst from src; src stays, moved-from"),
    "move_assign": OpSpec(5, ("src", "dst"), "dst = std::move(src)"),
    "swap": OpSpec(6, ("a", "b"), "swap(a, b)"),
    "resume": OpSpec(7, ("slot",), "resume the coroutine / advance the generator"),
    "drop": OpSpec(8, ("slot",), "destroy the object in slot"),
    "send": OpSpec(9, ("slot", "to"), "hand the object to another thread through a queue"),
    "touch": OpSpec(10, ("slot",), "write to the object's shared state"),
    "await": OpSpec(11, ("slot",), "a probe coroutine co_awaits the object"),
}
CODE_TO_NAME = {spec.code: name for name, spec in OPS.items()}
_SLOT_FIELDS = {"slot", "src", "dst", "a", "b"}


class InvalidSchedule(ValueError):
    """A schedule that cannot run: names the op index, the field and the value."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None,
                 value: Any = None) -> None:
        where = f"op {index}" if index is not None else "schedule"
        if field is not None:
            where += f", field {field!r}={value!r}"
        super().__init__(f"{where}: {message}")
        self.index = index
        self.field = field
        self.value = value


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation: a vocabulary name, its integer arguments, and the thread it runs on."""

    name: str
    args: tuple[int, ...]
    thread: int = 0

    def __post_init__(self) -> None:
        spec = OPS.get(self.name)
        if spec is None:
            raise InvalidSchedule(f"unknown op; expected one of {', '.join(OPS)}", field="op",
                                  value=self.name)
        if len(self.args) != len(spec.fields):
            raise InvalidSchedule(f"{self.name} takes {', '.join(spec.fields)}", field="args",
                                  value=self.args)

    @property
    def spec(self) -> OpSpec:
        return OPS[self.name]

    def field(self, name: str) -> int:
        return self.args[self.spec.fields.index(name)]

    def slots(self) -> tuple[int, ...]:
        return tuple(v for f, v in zip(self.spec.fields, self.args) if f in _SLOT_FIELDS)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.name}
        d.update(zip(self.spec.fields, self.args))
        if self.thread:
            d["thread"] = self.thread
        return d

    def render(self, factories: Sequence[str] = ()) -> str:
        parts = []
        for f, v in zip(self.spec.fields, self.args):
            if f == "factory" and v < len(factories):
                parts.append(f"factory={factories[v]}")
            elif f in ("slot", "src", "dst", "a", "b"):
                parts.append(str(v))
            else:
                parts.append(f"{f}={v}")
        text = f"{self.name}({', '.join(parts)})"
        return f"{text} @t{self.thread}" if self.thread else text


def make(slot: int, factory: int = 0, arg: int = 0, thread: int = 0) -> Op:
    return Op("make", (slot, factory, arg), thread)


def op(name: str, *args: int, thread: int = 0) -> Op:
    return Op(name, tuple(args), thread)


@dataclasses.dataclass(frozen=True)
class SlotState:
    live: bool
    holder: int | None  # the thread that holds the slot, None before first use


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Ops over `slots` object slots and `threads` threads, for one target.

    Invariant: every op's slots are < slots, threads < threads, and each op on a slot
    runs on the thread that holds it (the one that made it, copied or moved into it,
    or was sent it). End of schedule: every live slot is dropped by its holder, threads
    in order, slots ascending; then allocations are accounted.
    """

    target: str
    ops: tuple[Op, ...]
    slots: int = 0  # 0: derived from the ops
    threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        for i, o in enumerate(self.ops):  # before anything is derived from them
            for f, v in zip(o.spec.fields, o.args):
                if v < 0:
                    what = "slot" if f in _SLOT_FIELDS else "thread" if f == "to" else f
                    raise InvalidSchedule(f"{what} must be >= 0", index=i, field=f, value=v)
            if o.thread < 0:
                raise InvalidSchedule("thread must be >= 0", index=i, field="thread", value=o.thread)
        if not self.slots:
            used = [s for o in self.ops for s in o.slots()]
            object.__setattr__(self, "slots", max(used, default=0) + 1)
        if not self.threads:
            used = [o.thread for o in self.ops] + [o.field("to") for o in self.ops if o.name == "send"]
            object.__setattr__(self, "threads", max(used, default=0) + 1)
        self.validate()

    def __len__(self) -> int:
        return len(self.ops)

    def validate(self) -> None:
        """Structural checks that hold for any target."""
        if not isinstance(self.target, str) or not self.target:
            raise InvalidSchedule("a schedule names its target", field="target", value=self.target)
        if self.slots < 1:
            raise InvalidSchedule(f"slots must be 1..{MAX_SLOTS}", field="slots", value=self.slots)
        if self.threads < 1:
            raise InvalidSchedule(f"threads must be 1..{MAX_THREADS}", field="threads",
                                  value=self.threads)
        if len(self.ops) > MAX_OPS:
            raise InvalidSchedule(f"at most {MAX_OPS} ops", field="ops", value=len(self.ops))
        # Bounded by the driver's limits too, so that an op beyond them is named by its
        # index, not reported as a derived slot or thread count the file never wrote.
        n_slots, n_threads = min(self.slots, MAX_SLOTS), min(self.threads, MAX_THREADS)
        for i, o in enumerate(self.ops):
            if not 0 <= o.thread < n_threads:
                raise InvalidSchedule(f"thread must be 0..{n_threads - 1}", index=i,
                                      field="thread", value=o.thread)
            for f, v in zip(o.spec.fields, o.args):
                if f in _SLOT_FIELDS and not 0 <= v < n_slots:
                    raise InvalidSchedule(f"slot must be 0..{n_slots - 1}", index=i, field=f, value=v)
                if f == "to" and not 0 <= v < n_threads:
                    raise InvalidSchedule(f"thread must be 0..{n_threads - 1}", index=i,
                                          field=f, value=v)
                if f in ("factory", "arg") and v < 0:
                    raise InvalidSchedule("must be >= 0", index=i, field=f, value=v)
        if self.slots > MAX_SLOTS:
            raise InvalidSchedule(f"slots must be 1..{MAX_SLOTS}", field="slots", value=self.slots)
        if self.threads > MAX_THREADS:
            raise InvalidSchedule(f"threads must be 1..{MAX_THREADS}", field="threads",
                                  value=self.threads)
        self.simulate()

    def check_target(self, capabilities: Iterable[str], factories: Sequence[dict]) -> None:
        """Checks against what a built target supports (names from its capabilities)."""
        allowed = set(capabilities)
        for i, o in enumerate(self.ops):
            if o.name not in allowed:
                raise InvalidSchedule(
                    f"target {self.target!r} does not support {o.name}; it supports "
                    f"{', '.join(sorted(allowed))}", index=i, field="op", value=o.name)
            if o.name == "make":
                f = o.field("factory")
                if f >= len(factories):
                    raise InvalidSchedule(f"target {self.target!r} has {len(factories)} factories",
                                          index=i, field="factory", value=f)
                lo, hi = factories[f]["min"], factories[f]["max"]
                if not lo <= o.field("arg") <= hi:
                    raise InvalidSchedule(f"factory {factories[f]['name']!r} takes {lo}..{hi}",
                                          index=i, field="arg", value=o.field("arg"))

    def simulate(self) -> list[dict[int, SlotState]]:
        """Slot states after each op, mirroring the driver; raises InvalidSchedule when
        an op uses a slot held by another thread. Computed once: validation and the
        oracle both need it for every example."""
        cached = self.__dict__.get("_states")
        if cached is None:
            cached = self._simulate()
            object.__setattr__(self, "_states", cached)
        return cached

    def _simulate(self) -> list[dict[int, SlotState]]:
        state: dict[int, SlotState] = {}
        after: list[dict[int, SlotState]] = []
        for i, o in enumerate(self.ops):
            for f, s in zip(o.spec.fields, o.args):
                if f not in _SLOT_FIELDS:
                    continue
                holder = state.get(s, SlotState(False, None)).holder
                if holder is not None and holder != o.thread:
                    raise InvalidSchedule(
                        f"{o.name} runs on thread {o.thread} but slot {s} is held by thread "
                        f"{holder}; send it first", index=i, field=f, value=s)
            live = lambda s: state.get(s, SlotState(False, None)).live  # noqa: E731
            t = o.thread
            if o.name == "make":
                state[o.args[0]] = SlotState(True, t)
            elif o.name in ("copy", "move"):
                src, dst = o.args
                if live(src) and src != dst:
                    state[dst] = SlotState(True, t)
            elif o.name == "drop":
                state[o.args[0]] = SlotState(False, t)
            elif o.name == "send":
                s, to = o.args
                if live(s):
                    state[s] = SlotState(True, to)
            after.append(dict(state))
        return after

    def encode(self) -> list[int]:
        """The compact int array the native driver reads."""
        out = [_MAGIC, VERSION, self.slots, self.threads, len(self.ops)]
        for o in self.ops:
            args = list(o.args) + [0] * (3 - len(o.args))
            out += [o.spec.code, o.thread, *args]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "target": self.target,
            "slots": self.slots,
            "threads": self.threads,
            "ops": [o.to_json() for o in self.ops],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def render(self, factories: Sequence[str] = ()) -> list[str]:
        return [o.render(factories) for o in self.ops]

    def canonical(self) -> "Schedule":
        """The same schedule with slots renumbered in order of first use (0, 1, ...).
        Equivalent but for the end-of-schedule drop order, so callers re-check it."""
        order: dict[int, int] = {}
        for o in self.ops:
            for s in o.slots():
                order.setdefault(s, len(order))
        ops = tuple(Op(o.name, tuple(order[v] if f in _SLOT_FIELDS else v
                                     for f, v in zip(o.spec.fields, o.args)), o.thread)
                    for o in self.ops)
        return Schedule(self.target, ops, slots=max(len(order), 1), threads=self.threads)

    def replace(self, **changes: Any) -> "Schedule":
        return dataclasses.replace(self, **changes)


def from_json(data: Any) -> Schedule:
    """Parse a schedule from decoded JSON, raising InvalidSchedule on anything malformed."""
    if not isinstance(data, dict):
        raise InvalidSchedule("expected a JSON object", field="schedule", value=type(data).__name__)
    if data.get("format") != FORMAT:
        raise InvalidSchedule(f"not a stresscoro schedule (expected format {FORMAT!r})",
                              field="format", value=data.get("format"))
    if data.get("version") != VERSION:
        raise InvalidSchedule(f"unsupported version; this stresscoro reads version {VERSION}",
                              field="version", value=data.get("version"))
    raw_ops = data.get("ops")
    if not isinstance(raw_ops, list):
        raise InvalidSchedule("expected a list of ops", field="ops", value=raw_ops)
    ops = []
    for i, raw in enumerate(raw_ops):
        if not isinstance(raw, dict):
            raise InvalidSchedule("expected an object like {\"op\": \"make\", \"slot\": 0}",
                                  index=i, field="op", value=raw)
        name = raw.get("op")
        if name not in OPS:
            raise InvalidSchedule(f"unknown op; expected one of {', '.join(OPS)}", index=i,
                                  field="op", value=name)
        spec = OPS[name]
        unknown = set(raw) - set(spec.fields) - {"op", "thread"}
        if unknown:
            raise InvalidSchedule(f"{name} takes {', '.join(spec.fields)} (and thread)", index=i,
                                  field=sorted(unknown)[0], value=raw[sorted(unknown)[0]])
        args = []
        for f in spec.fields:
            default = 0 if f in ("factory", "arg") else None
            v = raw.get(f, default)
            if not isinstance(v, int) or isinstance(v, bool):
                raise InvalidSchedule("expected an integer", index=i, field=f, value=v)
            args.append(v)
        thread = raw.get("thread", 0)
        if not isinstance(thread, int) or isinstance(thread, bool) or thread < 0:
            raise InvalidSchedule("expected a thread number >= 0", index=i, field="thread", value=thread)
        ops.append(Op(name, tuple(args), thread))
    target = data.get("target")
    slots = data.get("slots", 0)
    threads = data.get("threads", 0)
    for f, v in (("slots", slots), ("threads", threads)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise InvalidSchedule("expected an integer", field=f, value=v)
    return Schedule(target=target, ops=tuple(ops), slots=slots, threads=threads)


def loads(text: str) -> Schedule:
    if len(text) > MAX_FILE_BYTES:
        raise InvalidSchedule(f"{len(text):,} characters; a schedule file is at most "
                              f"{MAX_FILE_BYTES:,} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidSchedule(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
                              ) from None
    except RecursionError:
        raise InvalidSchedule("JSON nested too deeply; a schedule is an object holding a "
                              "list of flat op objects") from None
    return from_json(data)


def load(path: str) -> Schedule:
    with open(path, encoding="utf-8") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise InvalidSchedule(f"the file has {size:,} bytes; a schedule file is at most "
                                  f"{MAX_FILE_BYTES:,} bytes")
        return loads(f.read(MAX_FILE_BYTES + 1))
