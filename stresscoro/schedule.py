"""The one data model: a schedule of ops over object slots and threads."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

FORMAT = "stresscoro-schedule"
# 2 added make_from, call, step and probe; 3 added preemptions. Older files still load.
VERSION = 3
READS_VERSIONS = (1, 2, 3)
# The driver's encoding: version 3 adds the preemption count and triples; a schedule
# without preemptions is still encoded as version 2, which every driver reads.
ENCODING_VERSION = 3
ENCODING_VERSION_PLAIN = 2
ENCODES_VERSIONS = (ENCODING_VERSION_PLAIN, ENCODING_VERSION)
OP_WORDS = 7  # per encoded op: code, thread, then up to five arguments
PREEMPTION_WORDS = 3  # per encoded preemption: op, after, to
MAX_SLOTS = 16
MAX_THREADS = 8
MAX_OPS = 4096
MAX_PREEMPTIONS = 8  # in a file; the generators draw at most 3
MAX_AFTER = 64  # the latest sync point a preemption names; the generators draw 1..8
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
    "await": OpSpec(11, ("slot",), "a probe coroutine co_awaits the object (the probe is "
                    "never freed; version 1)"),
    "make_from": OpSpec(12, ("dst", "combinator", "arg", "src", "src2"),
                        "dst = the adapter's combinator over src (and src2)"),
    "call": OpSpec(13, ("fn", "arg", "x", "y"), "the adapter's own op fn over slots x, y"),
    "step": OpSpec(14, (), "one turn of the library's scheduler (the adapter's step())"),
    "probe": OpSpec(15, ("dst", "src"), "a probe coroutine living in slot dst co_awaits src; "
                    "dropping dst frees it"),
}
CODE_TO_NAME = {spec.code: name for name, spec in OPS.items()}
VERSION_1_OPS = frozenset(n for n, spec in OPS.items() if spec.code <= 11)
_SLOT_FIELDS = {"slot", "src", "dst", "a", "b", "src2", "x", "y"}
# Slot fields an op may leave unused (-1): a one-input combinator, a custom op over fewer slots.
OPTIONAL_FIELDS = {"src2", "x", "y"}
PASS_MODES = ("copy", "move", "ref", "consume")


@dataclasses.dataclass(frozen=True)
class Signature:
    """A combinator or custom op of the target: its name and how it takes each input
    (a PASS_MODES word each, in order), and its argument range."""

    name: str
    inputs: tuple[str, ...]
    arg_min: int = 0
    arg_max: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        bad = [m for m in self.inputs if m not in PASS_MODES]
        if bad or len(self.inputs) > 2:
            raise InvalidSchedule(f"inputs are 0..2 of {', '.join(PASS_MODES)}",
                                  field=self.name, value=list(self.inputs))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "inputs": list(self.inputs), "min": self.arg_min,
                "max": self.arg_max}

    @classmethod
    def from_json(cls, data: Any) -> "Signature":
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise InvalidSchedule("expected {\"name\": ..., \"inputs\": [...]}",
                                  field="signature", value=data)
        return cls(data["name"], tuple(data.get("inputs", ())), int(data.get("min", 0)),
                   int(data.get("max", 0)))


class InvalidSchedule(ValueError):
    """A schedule that cannot run: names the op index (or the preemption's), the field
    and the value."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None,
                 value: Any = None, preemption: int | None = None) -> None:
        where = (f"op {index}" if index is not None else
                 f"preemption {preemption}" if preemption is not None else "schedule")
        if field is not None:
            where += f", field {field!r}={value!r}"
        super().__init__(f"{where}: {message}")
        self.index = index
        self.field = field
        self.value = value
        self.preemption = preemption


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
        return tuple(v for f, v in zip(self.spec.fields, self.args)
                     if f in _SLOT_FIELDS and not (f in OPTIONAL_FIELDS and v < 0))

    def inputs(self) -> tuple[int, ...]:
        """The slots a make_from or call takes as inputs, in order (unused ones left out)."""
        if self.name == "make_from":
            return tuple(v for v in self.args[3:] if v >= 0)
        if self.name == "call":
            return tuple(v for v in self.args[2:] if v >= 0)
        return ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.name}
        d.update((f, v) for f, v in zip(self.spec.fields, self.args)
                 if not (f in OPTIONAL_FIELDS and v < 0))
        if self.thread:
            d["thread"] = self.thread
        return d

    def render(self, factories: Sequence[str] = (), combinators: Sequence[str] = (),
               custom_ops: Sequence[str] = ()) -> str:
        if self.name in ("make_from", "call"):
            names = combinators if self.name == "make_from" else custom_ops
            which = self.args[1] if self.name == "make_from" else self.args[0]
            arg = self.args[2] if self.name == "make_from" else self.args[1]
            fn = names[which] if which < len(names) else f"#{which}"
            inner = ", ".join([*(str(v) for v in self.inputs()), *([f"arg={arg}"] if arg else [])])
            text = f"{fn}({inner})"
            if self.name == "make_from":
                text = f"make_from({self.args[0]} = {text})"
        else:
            parts = []
            for f, v in zip(self.spec.fields, self.args):
                if f == "factory" and v < len(factories):
                    parts.append(f"factory={factories[v]}")
                elif f in _SLOT_FIELDS:
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
class Preemption:
    """A hand-off inside an op: right after the `after`-th sync point (an atomic
    operation, fence or mutex lock/unlock of the code under test, counted from 1) that
    op `op`'s thread executes while running it, the thread hands the CPU to thread `to`,
    which runs its next pending op; then the schedule's default order resumes. Does
    nothing when the op executes fewer sync points or `to` has nothing left to run."""

    op: int
    after: int
    to: int

    def to_json(self) -> dict[str, int]:
        return {"op": self.op, "after": self.after, "to": self.to}


def ordered_preemptions(preemptions: Iterable[Preemption], ops: Sequence[Op],
                        threads: int) -> tuple[Preemption, ...]:
    """The legal ones of `preemptions` in legal order: each on an op of `ops`, `after` in
    1..MAX_AFTER, `to` another of the `threads` threads; sorted by (op, after), the
    first given kept where two share an (op, after); at most MAX_PREEMPTIONS. Both
    generators normalise their draws this way, and ops that change carry their
    preemptions along through it (renumbered_preemptions)."""
    kept: list[Preemption] = []
    seen: set[tuple[int, int]] = set()
    for p in sorted(preemptions, key=lambda p: (p.op, p.after)):  # stable: first drawn wins
        if not (0 <= p.op < len(ops) and 1 <= p.after <= MAX_AFTER and 0 <= p.to < threads
                and p.to != ops[p.op].thread) or (p.op, p.after) in seen:
            continue
        seen.add((p.op, p.after))
        kept.append(p)
    return tuple(kept[:MAX_PREEMPTIONS])


def renumbered_preemptions(preemptions: Iterable[Preemption], origin: Iterable[int | None],
                           ops: Sequence[Op], threads: int) -> tuple[Preemption, ...]:
    """`preemptions` after a schedule's ops became `ops`, where origin[i] is the index of
    the old op that new op i is (None for an op that is new): each preemption follows its
    op. One whose op is gone, or that no longer hands the CPU to another thread of the
    schedule (its op moved to thread `to`, or `to` >= threads), is dropped."""
    now: dict[int, int] = {}
    for i, j in enumerate(origin):
        if j is not None:
            now.setdefault(j, i)
    return ordered_preemptions((Preemption(now[p.op], p.after, p.to) for p in preemptions
                                if p.op in now), ops, threads)


def _derived_threads(ops: Sequence[Op]) -> int:
    used = [o.thread for o in ops] + [o.field("to") for o in ops if o.name == "send"]
    return max(used, default=0) + 1


@dataclasses.dataclass(frozen=True)
class SlotState:
    live: bool  # holds an object
    holder: int | None  # the thread that holds the slot, None before first use
    probe: bool = False  # holds a probe coroutine (made by `probe`) instead of an object
    born: int = -1  # the op that constructed what the slot holds


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Ops over `slots` object slots and `threads` threads, for one target.

    Invariant: every op's slots are < slots, threads < threads, and each op on a slot
    runs on the thread that holds it (the one that made it, copied or moved into it,
    or was sent it). End of schedule: the library's pending work runs (run_pending),
    then every live slot is dropped by its holder, threads in order, each thread's
    slots newest first (end_drops); then allocations are accounted.

    `preemptions` (threads >= 2 only) split ops at their sync points: sorted by (op,
    after), no two at the same (op, after), each handing the CPU to a thread other than
    its op's (see Preemption and validate). Ops that are removed, reordered or moved to
    another thread carry their preemptions along (replace(ops=..., origin=...)).
    """

    target: str
    ops: tuple[Op, ...]
    slots: int = 0  # 0: derived from the ops
    threads: int = 0
    # The target's combinators and custom ops, as far as make_from and call use them:
    # names for reports, pass modes for the model (a consumed input leaves its slot empty).
    combinators: tuple[Signature, ...] = ()
    custom_ops: tuple[Signature, ...] = ()
    preemptions: tuple[Preemption, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "combinators", tuple(self.combinators))
        object.__setattr__(self, "custom_ops", tuple(self.custom_ops))
        object.__setattr__(self, "preemptions", tuple(self.preemptions))
        for i, o in enumerate(self.ops):  # before anything is derived from them
            for f, v in zip(o.spec.fields, o.args):
                if v < 0 and not (f in OPTIONAL_FIELDS and v == -1):
                    what = "slot" if f in _SLOT_FIELDS else "thread" if f == "to" else f
                    raise InvalidSchedule(f"{what} must be >= 0", index=i, field=f, value=v)
            if o.thread < 0:
                raise InvalidSchedule("thread must be >= 0", index=i, field="thread", value=o.thread)
        if not self.slots:
            used = [s for o in self.ops for s in o.slots()]
            object.__setattr__(self, "slots", max(used, default=0) + 1)
        if not self.threads:
            object.__setattr__(self, "threads", _derived_threads(self.ops))
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
                if f in OPTIONAL_FIELDS and v == -1:
                    continue
                if f in _SLOT_FIELDS and not 0 <= v < n_slots:
                    raise InvalidSchedule(f"slot must be 0..{n_slots - 1}", index=i, field=f, value=v)
                if f == "to" and not 0 <= v < n_threads:
                    raise InvalidSchedule(f"thread must be 0..{n_threads - 1}", index=i,
                                          field=f, value=v)
                if f in ("factory", "arg", "combinator", "fn") and v < 0:
                    raise InvalidSchedule("must be >= 0", index=i, field=f, value=v)
            self._check_signature(i, o)
        if self.slots > MAX_SLOTS:
            raise InvalidSchedule(f"slots must be 1..{MAX_SLOTS}", field="slots", value=self.slots)
        if self.threads > MAX_THREADS:
            raise InvalidSchedule(f"threads must be 1..{MAX_THREADS}", field="threads",
                                  value=self.threads)
        self._check_preemptions()
        self.simulate()

    def _check_preemptions(self) -> None:
        """The legality rules of preemptions (Preemption; issue 17's contract)."""
        pre = self.preemptions
        if not pre:
            return
        if len(pre) > MAX_PREEMPTIONS:
            raise InvalidSchedule(f"at most {MAX_PREEMPTIONS} preemptions",
                                  field="preemptions", value=len(pre))
        if self.threads < 2:
            raise InvalidSchedule("a preemption hands the CPU to another thread; the "
                                  "schedule needs 2 or more threads", preemption=0,
                                  field="threads", value=self.threads)
        for k, p in enumerate(pre):
            if not isinstance(p, Preemption):
                raise InvalidSchedule("expected a Preemption(op, after, to)", preemption=k,
                                      field="preemption", value=p)
            for f in ("op", "after", "to"):
                v = getattr(p, f)
                if not isinstance(v, int) or isinstance(v, bool):
                    raise InvalidSchedule("expected an integer", preemption=k, field=f, value=v)
            if not 0 <= p.op < len(self.ops):
                raise InvalidSchedule(
                    f"op must be 0..{len(self.ops) - 1}" if self.ops else
                    "the schedule has no ops to preempt", preemption=k, field="op", value=p.op)
            if not 1 <= p.after <= MAX_AFTER:
                raise InvalidSchedule(f"after counts sync points from 1; must be 1..{MAX_AFTER}",
                                      preemption=k, field="after", value=p.after)
            if not 0 <= p.to < self.threads:
                raise InvalidSchedule(f"thread must be 0..{self.threads - 1}", preemption=k,
                                      field="to", value=p.to)
            if p.to == self.ops[p.op].thread:
                raise InvalidSchedule(f"op {p.op} runs on thread {p.to} itself; a preemption "
                                      "hands the CPU to another thread", preemption=k,
                                      field="to", value=p.to)
            prev = pre[k - 1] if k else None
            if prev is not None and (prev.op, prev.after) >= (p.op, p.after):
                field, value = ("after", p.after) if prev.op == p.op else ("op", p.op)
                raise InvalidSchedule(
                    f"preemption {k - 1} is at the same op and sync point"
                    if (prev.op, prev.after) == (p.op, p.after) else
                    f"preemptions are sorted by (op, after); preemption {k - 1} is at "
                    f"({prev.op}, {prev.after})", preemption=k, field=field, value=value)

    def signature(self, o: Op) -> Signature | None:
        """The combinator or custom op a make_from or call names (None for other ops)."""
        if o.name == "make_from":
            return self.combinators[o.args[1]] if o.args[1] < len(self.combinators) else None
        if o.name == "call":
            return self.custom_ops[o.args[0]] if o.args[0] < len(self.custom_ops) else None
        return None

    def _check_signature(self, i: int, o: Op) -> None:
        if o.name not in ("make_from", "call"):
            return
        declared = self.combinators if o.name == "make_from" else self.custom_ops
        field = "combinator" if o.name == "make_from" else "fn"
        sig = self.signature(o)
        if sig is None:
            raise InvalidSchedule(
                f"the schedule declares {len(declared)} "
                f"{'combinators' if o.name == 'make_from' else 'custom ops'}",
                index=i, field=field, value=o.args[0 if o.name == "call" else 1])
        slot_args = o.args[3:] if o.name == "make_from" else o.args[2:]
        used = [v for v in slot_args if v >= 0]
        if len(used) != len(sig.inputs) or any(v < 0 for v in slot_args[:len(sig.inputs)]):
            raise InvalidSchedule(f"{sig.name} takes {len(sig.inputs)} slot(s)", index=i,
                                  field="inputs", value=used)
        if o.name == "make_from" and o.args[0] in used:
            raise InvalidSchedule(f"{sig.name}: the destination is also an input", index=i,
                                  field="dst", value=o.args[0])

    def check_target(self, capabilities: Iterable[str], factories: Sequence[dict],
                     target_combinators: Sequence[dict] = (),
                     target_custom_ops: Sequence[dict] = ()) -> None:
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
            sig = self.signature(o)
            if sig is not None:
                have = (target_combinators if o.name == "make_from" else target_custom_ops)
                which = o.args[1] if o.name == "make_from" else o.args[0]
                if which >= len(have) or Signature.from_json(have[which]) != sig:
                    raise InvalidSchedule(
                        f"the schedule's {sig.name}{list(sig.inputs)} is not the target's "
                        f"({', '.join(h['name'] for h in have) or 'it declares none'})",
                        index=i, field=o.spec.fields[1 if o.name == "make_from" else 0],
                        value=which)
                if not sig.arg_min <= o.field("arg") <= sig.arg_max:
                    raise InvalidSchedule(f"{sig.name} takes {sig.arg_min}..{sig.arg_max}",
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
                state[o.args[0]] = SlotState(True, t, born=i)
            elif o.name in ("copy", "move"):
                src, dst = o.args
                if live(src) and src != dst:
                    state[dst] = SlotState(True, t, born=i)
            elif o.name == "drop":
                state[o.args[0]] = SlotState(False, t)
            elif o.name == "send":
                s, to = o.args
                cur = state.get(s, SlotState(False, None))
                if cur.live or cur.probe:
                    state[s] = dataclasses.replace(cur, holder=to)
            elif o.name in ("make_from", "call"):
                ins = o.inputs()
                if all(live(s) for s in ins):
                    for s, mode in zip(ins, self.signature(o).inputs):
                        if mode == "consume":
                            state[s] = SlotState(False, t)
                    if o.name == "make_from":
                        state[o.args[0]] = SlotState(True, t, born=i)
            elif o.name == "probe":
                dst, src = o.args
                if live(src) and src != dst:
                    state[dst] = SlotState(False, t, probe=True, born=i)
            after.append(dict(state))
        return after

    def end_drops(self) -> list[list[int]]:
        """Per thread, the slots its end-of-schedule turn drops, in the driver's order:
        newest first (by the op that constructed each), ties by slot number."""
        end = self.simulate()[-1] if self.ops else {}
        per = [[] for _ in range(self.threads)]
        held = sorted(((-st.born, s, st.holder) for s, st in end.items()
                       if (st.live or st.probe) and st.holder is not None))
        for _, s, holder in held:
            per[holder].append(s)
        return per

    def encode(self) -> list[int]:
        """The compact int array the native driver reads: magic, version, slots,
        threads, the op count, (version 3: the preemption count,) OP_WORDS per op, then
        (version 3) an (op, after, to) triple per preemption. Version 2, which has no
        preemption count, when there are no preemptions."""
        out = [_MAGIC, ENCODING_VERSION if self.preemptions else ENCODING_VERSION_PLAIN,
               self.slots, self.threads, len(self.ops)]
        if self.preemptions:
            out.append(len(self.preemptions))
        for o in self.ops:
            args = list(o.args) + [0] * (OP_WORDS - 2 - len(o.args))
            out += [o.spec.code, o.thread, *args]
        for p in self.preemptions:
            out += [p.op, p.after, p.to]
        return out

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "target": self.target,
            "slots": self.slots,
            "threads": self.threads,
        }
        if self.combinators:
            data["combinators"] = [c.to_json() for c in self.combinators]
        if self.custom_ops:
            data["custom_ops"] = [c.to_json() for c in self.custom_ops]
        data["ops"] = [o.to_json() for o in self.ops]
        if self.preemptions:
            data["preemptions"] = [p.to_json() for p in self.preemptions]
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def render(self, factories: Sequence[str] = ()) -> list[str]:
        comb = [c.name for c in self.combinators]
        cust = [c.name for c in self.custom_ops]
        return [o.render(factories, comb, cust) for o in self.ops]

    def render_preemptions(self, factories: Sequence[str] = ()) -> list[str]:
        """One line per preemption, naming the op it splits as render() does."""
        ops = self.render(factories) if self.preemptions else []
        return [f"  preempt op {p.op} ({ops[p.op]}) after sync point {p.after} -> thread {p.to}"
                for p in self.preemptions]

    def canonical(self) -> "Schedule":
        """The same schedule with slots renumbered in order of first use (0, 1, ...).
        Equivalent but for the end-of-schedule drop order, so callers re-check it. Ops
        keep their places, so preemptions keep theirs."""
        order: dict[int, int] = {}
        for o in self.ops:
            for s in o.slots():
                order.setdefault(s, len(order))
        ops = tuple(Op(o.name, tuple(order[v] if f in _SLOT_FIELDS and v >= 0 else v
                                     for f, v in zip(o.spec.fields, o.args)), o.thread)
                    for o in self.ops)
        return dataclasses.replace(self, ops=ops, slots=max(len(order), 1))

    def replace(self, *, origin: Iterable[int | None] | None = None,
                **changes: Any) -> "Schedule":
        """dataclasses.replace, except that when the ops change (and `preemptions` is not
        given) the preemptions follow their ops (renumbered_preemptions): origin[i] is
        the index of the op that new op i comes from, or None for a new op. Without
        `origin` the new ops replace the old ones in place, one for one."""
        if "ops" in changes and "preemptions" not in changes and self.preemptions:
            ops = tuple(changes["ops"])
            if origin is None:
                if len(ops) != len(self.ops):
                    raise ValueError(f"replace(ops=...) from {len(self.ops)} ops to {len(ops)}: "
                                     "pass origin= so that the preemptions follow their ops")
                origin = range(len(ops))
            threads = changes.get("threads", self.threads) or _derived_threads(ops)
            changes["preemptions"] = renumbered_preemptions(self.preemptions, origin, ops,
                                                            threads)
        return dataclasses.replace(self, **changes)

    def without_ops(self, indices: Iterable[int]) -> "Schedule":
        """The schedule with the ops at `indices` deleted; the preemptions of the others
        are renumbered, those of the deleted ops dropped."""
        gone = set(indices)
        kept = [i for i in range(len(self.ops)) if i not in gone]
        return self.replace(ops=tuple(self.ops[i] for i in kept), origin=kept)


def from_json(data: Any) -> Schedule:
    """Parse a schedule from decoded JSON, raising InvalidSchedule on anything malformed."""
    if not isinstance(data, dict):
        raise InvalidSchedule("expected a JSON object", field="schedule", value=type(data).__name__)
    if data.get("format") != FORMAT:
        raise InvalidSchedule(f"not a stresscoro schedule (expected format {FORMAT!r})",
                              field="format", value=data.get("format"))
    version = data.get("version")
    if version not in READS_VERSIONS or isinstance(version, bool):
        raise InvalidSchedule("unsupported version; this stresscoro reads versions "
                              f"{', '.join(map(str, READS_VERSIONS))}", field="version",
                              value=version)
    raw_ops = data.get("ops")
    if not isinstance(raw_ops, list):
        raise InvalidSchedule("expected a list of ops", field="ops", value=raw_ops)
    ops = []
    for i, raw in enumerate(raw_ops):
        if not isinstance(raw, dict):
            raise InvalidSchedule("expected an object like {\"op\": \"make\", \"slot\": 0}",
                                  index=i, field="op", value=raw)
        name = raw.get("op")
        known = OPS if version >= 2 else VERSION_1_OPS
        if name not in known:
            hint = " (a version 2 op; this file says version 1)" if name in OPS else ""
            raise InvalidSchedule(f"unknown op{hint}; expected one of {', '.join(known)}",
                                  index=i, field="op", value=name)
        spec = OPS[name]
        unknown = set(raw) - set(spec.fields) - {"op", "thread"}
        if unknown:
            raise InvalidSchedule(f"{name} takes {', '.join(spec.fields)} (and thread)", index=i,
                                  field=sorted(unknown)[0], value=raw[sorted(unknown)[0]])
        args = []
        for f in spec.fields:
            default = 0 if f in ("factory", "arg") else -1 if f in OPTIONAL_FIELDS else None
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
    preemptions = _preemptions_from_json(data, version)
    sigs = {}
    for key in ("combinators", "custom_ops"):
        raw_sigs = data.get(key, [])
        if not isinstance(raw_sigs, list):
            raise InvalidSchedule("expected a list of {\"name\", \"inputs\", \"min\", \"max\"}",
                                  field=key, value=raw_sigs)
        sigs[key] = tuple(Signature.from_json(d) for d in raw_sigs)
    return Schedule(target=target, ops=tuple(ops), slots=slots, threads=threads,
                    preemptions=preemptions, **sigs)


def _preemptions_from_json(data: dict, version: int) -> tuple[Preemption, ...]:
    if "preemptions" not in data:
        return ()
    raw_list = data["preemptions"]
    if version < 3:
        raise InvalidSchedule(f"preemptions are a version 3 field; this file says version "
                              f"{version}", field="preemptions", value=raw_list)
    if not isinstance(raw_list, list):
        raise InvalidSchedule("expected a list like [{\"op\": 3, \"after\": 1, \"to\": 1}]",
                              field="preemptions", value=raw_list)
    if len(raw_list) > MAX_PREEMPTIONS:
        raise InvalidSchedule(f"at most {MAX_PREEMPTIONS} preemptions", field="preemptions",
                              value=len(raw_list))
    out = []
    for k, raw in enumerate(raw_list):
        if not isinstance(raw, dict):
            raise InvalidSchedule("expected an object like {\"op\": 3, \"after\": 1, \"to\": 1}",
                                  preemption=k, field="preemption", value=raw)
        unknown = sorted(set(raw) - {"op", "after", "to"})
        if unknown:
            raise InvalidSchedule("a preemption takes op, after and to", preemption=k,
                                  field=unknown[0], value=raw[unknown[0]])
        for f in ("op", "after", "to"):
            v = raw.get(f)
            if not isinstance(v, int) or isinstance(v, bool):
                raise InvalidSchedule("expected an integer", preemption=k, field=f, value=v)
        out.append(Preemption(raw["op"], raw["after"], raw["to"]))
    return tuple(out)


def decode(target: str, words: Sequence[int], combinators: Iterable[Signature] = (),
           custom_ops: Iterable[Signature] = ()) -> Schedule:
    """A Schedule from the driver's int encoding, version 2 or 3 (the inverse of
    Schedule.encode)."""
    words = list(words)
    version = words[1] if len(words) >= 2 else None
    head = 6 if version == ENCODING_VERSION else 5
    if (len(words) < head or words[0] != _MAGIC or version not in ENCODES_VERSIONS
            or not 0 <= words[4] <= MAX_OPS):
        raise InvalidSchedule("not a driver encoding", field="words", value=words[:head])
    slots, threads, n = words[2], words[3], words[4]
    n_pre = words[5] if head == 6 else 0
    if not 0 <= n_pre <= MAX_PREEMPTIONS or len(words) != head + OP_WORDS * n + \
            PREEMPTION_WORDS * n_pre:
        raise InvalidSchedule("not a driver encoding", field="words", value=words[:head])
    ops = []
    for i in range(n):
        code, thread, *args = words[head + OP_WORDS * i: head + OP_WORDS * (i + 1)]
        name = CODE_TO_NAME.get(code)
        if name is None:
            raise InvalidSchedule("unknown op code", index=i, field="code", value=code)
        ops.append(Op(name, tuple(args[:len(OPS[name].fields)]), thread))
    at = head + OP_WORDS * n
    triples = (words[at + PREEMPTION_WORDS * k: at + PREEMPTION_WORDS * (k + 1)]
               for k in range(n_pre))
    preemptions = tuple(Preemption(*t) for t in triples)
    return Schedule(target=target, ops=tuple(ops), slots=slots, threads=threads,
                    combinators=tuple(combinators), custom_ops=tuple(custom_ops),
                    preemptions=preemptions)


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
