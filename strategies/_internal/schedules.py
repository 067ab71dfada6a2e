"""Schedules a target can run, drawn so that Hypothesis shrinks them well.

Each op draws only the values it uses (a shape Hypothesis deletes cleanly), and
shrinking goes toward fewer ops, lower slot numbers, the first factory, the smallest
argument, thread 0, and the ops listed first in OP_ORDER. The raw draws then pass
through a model of the schedule that keeps it meaningful and legal:

- a slot an op reads is steered onto a live slot, unless the draw deliberately keeps an
  empty one (using an empty or moved-from object is worth testing, but rarely); with no
  live slot at all, the op becomes a make of the first factory;
- an op runs on the thread that holds its slots (the one that made, copied or moved
  into it, or was sent it); an op whose two slots are held by different threads is
  left out, since no program could run it without a hand-off;
- the ops that write a coroutine frame (resume, touch, await) on one family of copies
  come from one thread only, the family's first writer: copies may be dropped anywhere,
  but two threads writing one frame with no synchronisation of their own is a race in
  the schedule, not in the library, unless the library promises otherwise
  (rules.resume_from_any_thread);
- a copy is sent away from its siblings only if the library promises that copies may be
  dropped on different threads (rules.copies_dropped_across_threads); no send at all if
  objects may not change threads (rules.moves_across_threads);
- declared preconditions are never broken: a moved-from object is only dropped, assigned
  to or made into (unless rules.use_after_move), no self copy/move assignment or self
  swap the rules forbid, no second await of one object (unless rules.await_twice; a
  probe awaits, and so does a combinator taking its input by ref, move or consume);
- combinators (make_from) and the adapter's own ops (call) take live inputs, distinct
  from each other and from the destination; a consumed input leaves its slot empty;
  a probe lives in a slot of its own, which only drop, send or a new object replaces;
- an object that refers to another (a combinator's pass::ref input, the object a probe
  awaits) borrows it: while the borrower lives, the borrowed object is not dropped,
  replaced, moved from, assigned, swapped, consumed or sent, and neither is sent the
  borrower, as a C++ caller keeps a by-reference argument alive. (The end-of-schedule
  drops go newest first, so a borrower is always destroyed before what it borrows.)

Preemptions (schedule.Preemption) are drawn after the ops, over the ops as built, and
only with two threads or more: a list of 0 to MAX_DRAWN_PREEMPTIONS, each an op index,
`after` in 1..MAX_DRAWN_AFTER and `to` as an index among the threads other than that
op's (so that it shrinks toward no preemptions, sync point 1 and the lowest other
thread). The list is then put in the schedule's order (schedule.ordered_preemptions):
sorted by (op, after), and of two at the same (op, after) the first drawn kept. A
preemption is not steered by the model: handing the CPU to another thread at any sync
point is legal (the thread runs its next pending op, or nothing), so every preemption
that names an op of the schedule and another of its threads is kept as drawn. When a
model pass leaves an op out (rebuild of a changed schedule), its preemptions go too, and
the others follow their ops.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Collection, Sequence

from hypothesis import strategies as st

from stresscoro.schedule import (MAX_AFTER, OPS, InvalidSchedule, Op, Preemption, Schedule, Signature,
                                 ordered_preemptions, renumbered_preemptions)

DEFAULT_MAX_OPS = 12
DEFAULT_SLOTS = 3
COMPOSITION_SLOTS = 4  # the default for a target with combinators
# Shrinking prefers ops early in this list. `await` (a probe that is never freed) is
# replayed from old files but no longer generated: `probe` supersedes it.
OP_ORDER = ("make", "copy", "move", "resume", "drop", "copy_assign", "move_assign", "swap",
            "touch", "make_from", "probe", "call", "step", "send")
# Fields that must name a live object for the op to do anything.
_READS = {"copy": ("src",), "move": ("src",), "copy_assign": ("src", "dst"),
          "move_assign": ("src", "dst"), "swap": ("a", "b"), "resume": ("slot",),
          "drop": ("slot",), "touch": ("slot",), "await": ("slot",), "send": ("slot",),
          "probe": ("src",), "make_from": ("src", "src2"), "call": ("x", "y")}
# Fields whose object is used in a way a moved-from object may not be (dst of an
# assignment, drop and send are fine).
_USES = {"copy": ("src",), "move": ("src",), "copy_assign": ("src",), "move_assign": ("src",),
         "swap": ("a", "b"), "resume": ("slot",), "touch": ("slot",), "await": ("slot",),
         "probe": ("src",), "make_from": ("src", "src2"), "call": ("x", "y")}
_WRITES_FRAME = ("resume", "touch", "await", "probe")
# One draw in this many keeps an empty slot where a live one was expected.
_KEEP_EMPTY_ONE_IN = 16
# Preemptions a schedule draws (with 2 threads or more), and the latest sync point one
# names: a bug inside an op rarely needs more than two hand-offs, and most ops of the
# built-in targets execute a handful of sync points.
MAX_DRAWN_PREEMPTIONS = 3
MAX_DRAWN_AFTER = 8


def _steer(slot: int, live: Sequence[bool], keep_empty: bool, spread: bool = False) -> int:
    """The drawn slot if live (or kept empty on purpose), else the next live slot. With
    `spread` (composition schedules), the draw picks among the live slots evenly
    instead: with objects in slots 0 and 1 of four, "next live" would pick 0 three
    times in four, and the ops of a composition bug land on different objects."""
    if keep_empty or not any(live):
        return slot
    if spread:
        chosen = [s for s in range(len(live)) if live[s]]
        return chosen[slot % len(chosen)]
    if live[slot]:
        return slot
    n = len(live)
    return next(s % n for s in range(slot, slot + n) if live[s % n])


def _free_slot(slot: int, occupied: Sequence[bool]) -> int:
    """The drawn slot if not `occupied`, else the next such one, else the slot drawn."""
    n = len(occupied)
    return next((s % n for s in range(slot, slot + n) if not occupied[s % n]), slot)


@dataclasses.dataclass
class _Model:
    """What generation needs to know after each op: liveness, holders, copy families."""

    live: list[bool]  # holds an object
    holder: list[int | None]
    family: list[int | None]  # slots sharing a frame through copies share a family
    writer: dict[int, int] = dataclasses.field(default_factory=dict)  # family -> thread
    families: int = 0
    moved: list[bool] = dataclasses.field(default_factory=list)  # holds a moved-from object
    awaited: list[bool] = dataclasses.field(default_factory=list)  # its object was awaited
    probe: list[bool] = dataclasses.field(default_factory=list)  # holds a probe
    # The slots the object (or probe) in each slot refers to by lvalue.
    borrows: list[frozenset[int]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.live)
        self.moved, self.awaited, self.probe = [False] * n, [False] * n, [False] * n
        self.borrows = [frozenset()] * n

    def borrowed(self, slot: int) -> bool:
        return any(slot in b for s, b in enumerate(self.borrows) if self.occupied(s))

    def _fresh(self, slot: int, thread: int, family: int | None = None) -> None:
        """Slot now holds a new object (family: shared with a copy source, or new)."""
        self.live[slot], self.holder[slot], self.probe[slot] = True, thread, False
        self.moved[slot] = self.awaited[slot] = False
        self.borrows[slot] = frozenset()
        if family is None:
            family, self.families = self.families, self.families + 1
        self.family[slot] = family

    def _empty(self, slot: int, thread: int) -> None:
        self.live[slot] = self.probe[slot] = self.moved[slot] = self.awaited[slot] = False
        self.family[slot], self.holder[slot] = None, thread
        self.borrows[slot] = frozenset()

    def occupied(self, slot: int) -> bool:
        return self.live[slot] or self.probe[slot]

    def apply(self, op: Op, sig: Signature | None = None) -> None:
        n, a, t = op.name, op.args, op.thread
        if n == "make":
            self._fresh(a[0], t)
        elif n in ("copy", "move"):
            src, dst = a
            if self.live[src] and src != dst:
                moved, awaited, borrows = self.moved[src], self.awaited[src], self.borrows[src]
                self._fresh(dst, t, self.family[src])
                self.moved[dst], self.borrows[dst] = moved, borrows
                if n == "move":
                    self.awaited[dst] = awaited
                    self.family[src], self.moved[src], self.awaited[src] = None, True, False
                    self.borrows[src] = frozenset()
        elif n in ("copy_assign", "move_assign"):
            src, dst = a
            if self.live[src] and self.live[dst]:
                self.family[dst], self.moved[dst] = self.family[src], self.moved[src]
                self.awaited[dst] = self.awaited[src] if n == "move_assign" else False
                self.borrows[dst] = self.borrows[src]
                if n == "move_assign":
                    self.family[src], self.moved[src], self.awaited[src] = None, True, False
                    self.borrows[src] = frozenset()
        elif n == "swap":
            x, y = a
            if self.live[x] and self.live[y]:
                for lst in (self.family, self.moved, self.awaited, self.borrows):
                    lst[x], lst[y] = lst[y], lst[x]
        elif n == "drop":
            self._empty(a[0], t)
        elif n == "send":
            if self.occupied(a[0]):
                self.holder[a[0]] = a[1]
        elif n in ("await", "probe"):
            src = a[0] if n == "await" else a[1]
            if self.live[src]:
                self.awaited[src] = True
                if n == "probe":
                    self._empty(a[0], t)
                    self.probe[a[0]] = True
                    self.borrows[a[0]] = frozenset({src})
        elif n in ("make_from", "call"):
            ins = op.inputs()
            if not all(self.live[s] for s in ins):
                return
            for s, mode in zip(ins, sig.inputs):
                if mode == "move":
                    self.family[s], self.moved[s], self.awaited[s] = None, True, False
                elif mode == "consume":
                    self._empty(s, t)
                elif mode == "ref":
                    self.awaited[s] = True
            if n == "make_from":
                self._fresh(a[0], t)
                self.borrows[a[0]] = frozenset(s for s, m in zip(ins, sig.inputs) if m == "ref")

    def thread_for(self, slots: Sequence[int], drawn: int) -> int | None:
        """The thread an op on `slots` must run on, or None if no thread may run it."""
        holders = {self.holder[s] for s in slots} - {None}
        if len(holders) > 1:
            return None
        return holders.pop() if holders else drawn

    def shared(self, slot: int) -> bool:
        """True when another live slot shares this slot's frame."""
        fam = self.family[slot]
        return fam is not None and any(
            f == fam and self.live[s] for s, f in enumerate(self.family) if s != slot)

    def may_write(self, slot: int, thread: int) -> bool:
        fam = self.family[slot]
        return fam is None or self.writer.get(fam, thread) == thread

    def wrote(self, slot: int, thread: int) -> None:
        if self.live[slot] and self.family[slot] is not None:
            self.writer.setdefault(self.family[slot], thread)


def _signature_of(name: str, raw: tuple[int, ...], combinators, custom_ops) -> Signature | None:
    if name == "make_from":
        return combinators[raw[1]]
    if name == "call":
        return custom_ops[raw[0]]
    return None


def _breaks_precondition(op: Op, sig: Signature | None, model: _Model, rules: dict) -> bool:
    """True when `op` would break a precondition the rules declare (module docstring)."""
    n, a = op.name, op.args
    fields = OPS[n].fields
    if any(model.borrowed(s) for s in _disturbed(op, sig)):
        return True
    if n == "send" and model.borrows[a[0]]:
        return True
    if not rules.get("use_after_move", False):
        for f in _USES.get(n, ()):
            s = a[fields.index(f)]
            if s >= 0 and model.live[s] and model.moved[s]:
                return True
    if n in ("copy_assign", "move_assign", "swap") and a[0] == a[1]:
        rule = {"copy_assign": "self_copy_assign", "move_assign": "self_move_assign",
                "swap": "self_swap"}[n]
        default = {"self_copy_assign": True, "self_move_assign": False, "self_swap": True}[rule]
        if not rules.get(rule, default):
            return True
    if not rules.get("await_twice", False):
        if n in ("await", "probe"):
            src = a[0] if n == "await" else a[1]
            if model.live[src] and model.awaited[src]:
                return True
        if sig is not None and n == "make_from":
            ins = op.inputs()
            if any(model.awaited[s] for s, m in zip(ins, sig.inputs) if m != "copy"):
                return True
            if len(ins) == 2 and ins[0] == ins[1] and "copy" not in sig.inputs:
                return True  # when_all(a, a): the same object awaited twice
    return False


def _input_ok(slot: int, mode: str, name: str, model: _Model, rules: dict) -> bool:
    """True when `slot` may be a combinator's or custom op's input taken by `mode`."""
    if not model.live[slot]:
        return False
    if model.moved[slot] and not rules.get("use_after_move", False):
        return False
    if (name == "make_from" and mode != "copy" and model.awaited[slot]
            and not rules.get("await_twice", False)):
        return False
    return mode not in ("move", "consume") or not model.borrowed(slot)


def _disturbed(op: Op, sig: Signature | None) -> tuple[int, ...]:
    """The slots whose object `op` destroys, replaces, moves from, changes or sends away:
    none of them may be borrowed."""
    n, a = op.name, op.args
    if n in ("drop", "make", "send"):
        return (a[0],)
    if n in ("copy", "copy_assign"):
        return (a[1],)
    if n in ("move", "move_assign", "swap"):
        return a
    if n == "probe":
        return (a[0],)
    if sig is not None:
        taken = tuple(s for s, m in zip(op.inputs(), sig.inputs) if m in ("move", "consume"))
        return taken + ((a[0],) if n == "make_from" else ())
    return ()


def _build(target: str, factories: tuple[tuple[int, int], ...], slots: int, threads: int,
           rules: dict, raw_ops: list[tuple[str, tuple[int, ...], int, int]],
           combinators: tuple[Signature, ...] = (),
           custom_ops: tuple[Signature, ...] = (), spread: bool = False,
           preemptions: Sequence[Preemption] = ()) -> Schedule:
    """Turn raw draws into a legal schedule (see the module docstring). `preemptions`
    name raw ops by index; each follows its op, or goes with it when it is left out."""
    model = _Model([False] * slots, [None] * slots, [None] * slots)
    ops: list[Op] = []
    origin: list[int | None] = []  # per op built, the raw op it comes from
    for drawn, (name, raw, keep, drawn_thread) in enumerate(raw_ops):
        keep_empty = keep == _KEEP_EMPTY_ONE_IN - 1
        sig = _signature_of(name, raw, combinators, custom_ops)
        n_inputs = len(sig.inputs) if sig is not None else 0
        if name in _READS and not keep_empty and not any(model.live) and (
                name not in ("make_from", "call")):
            # Nothing to read yet: make something instead of wasting the op.
            name, raw, sig = "make", (raw[0], 0, 0), None
        reads = _READS.get(name, ())
        if name == "drop":
            occupied = [model.occupied(s) for s in range(slots)]
        else:
            occupied = model.live
        if not rules.get("use_after_move", False):
            # Steer uses of an object onto slots whose object is not moved-from.
            usable = [model.live[s] and not model.moved[s] for s in range(slots)]
        else:
            usable = model.live
        args = []
        for field, value in zip(OPS[name].fields, raw):
            if field == "arg":
                lo, hi = (factories[args[-1]] if name == "make"
                          else (sig.arg_min, sig.arg_max))
                value = lo + min(value, hi - lo)
            elif field in reads:
                position = reads.index(field)
                if name in ("make_from", "call") and position >= n_inputs:
                    value = -1  # an input this combinator or op does not take
                else:
                    mask = usable if field in _USES.get(name, ()) and any(usable) else occupied
                    value = _steer(value, mask, keep_empty, spread)
            elif field == "dst" and name in ("make_from", "probe") and spread:
                # Composition schedules: a destination that destroys nothing worth
                # keeping, an empty slot or one holding only a moved-from husk (elsewhere
                # the slot drawn, as for make, so shrinking reaches every destination).
                value = _free_slot(value, [model.occupied(s) and not model.moved[s]
                                           for s in range(slots)])
            args.append(value)
        if name == "make_from" and args[0] in args[3:]:
            # The destination is one of the inputs: take the first slot that is not.
            free = [s for s in range(slots) if s not in args[3:]]
            if not free:
                continue
            args[0] = free[0]
        if name in ("make_from", "call") and not keep_empty and n_inputs:
            # An input that cannot be used (none live, moved-from, the other input
            # again...) is made fresh, in a free slot, just before: one draw gives
            # `make, make, when_all`, so deeper compositions are within reach.
            first = 3 if name == "make_from" else 2
            taken = {args[0]} if name == "make_from" else set()
            kept = [i for i, mode in enumerate(sig.inputs)
                    if args[first + i] not in taken and _input_ok(args[first + i], mode, name,
                                                                  model, rules)
                    and args[first + i] not in [args[first + j] for j in range(i)]]
            base = model.thread_for(sorted(taken | {args[first + i] for i in kept}), drawn_thread)
            if base is None:
                continue
            fresh = []
            for i in range(n_inputs):
                if i in kept:
                    taken.add(args[first + i])
                    continue
                free = [s for s in range(slots) if not model.occupied(s) and s not in taken
                        and model.holder[s] in (None, base)]
                if not free:
                    break
                fresh.append(free[0])
                taken.add(free[0])
                args[first + i] = free[0]
            else:
                f_in, a_in = raw[-2:] if len(raw) > len(OPS[name].fields) else (0, 0)
                lo, hi = factories[f_in]
                for s_in in fresh:
                    made = Op("make", (s_in, f_in, lo + min(a_in, hi - lo)), base)
                    model.apply(made)
                    ops.append(made)
                    origin.append(None)
            if len(taken) < n_inputs + (name == "make_from"):
                continue
        if name == "probe" and args[0] == args[1]:
            args[0] = (args[1] + 1) % slots
            if args[0] == args[1]:
                continue
        op = Op(name, tuple(args))
        if _breaks_precondition(op, sig, model, rules):
            continue
        thread = model.thread_for(op.slots(), drawn_thread)
        if thread is None:
            continue
        if name == "send":
            if rules.get("copies_dropped_across_threads") is False and model.shared(args[0]):
                continue  # this library does not promise copies may part across threads
            op = Op(name, (args[0], (thread + args[1]) % threads))
        if not rules.get("resume_from_any_thread"):
            written = _written(op, sig)
            if not all(model.may_write(s, thread) for s in written):
                continue
            for s in written:
                model.wrote(s, thread)
        op = Op(name, op.args, thread)
        model.apply(op, sig)
        ops.append(op)
        origin.append(drawn)
    return Schedule(target=target, ops=tuple(ops), slots=slots, threads=threads,
                    combinators=combinators, custom_ops=custom_ops,
                    preemptions=renumbered_preemptions(preemptions, origin, ops, threads))


def rebuild(schedule: Schedule, factories: Sequence[dict], rules: dict | None = None, *,
            spread: bool = False) -> Schedule:
    """`schedule` passed back through the model as if each of its ops had been drawn as
    written (`spread`: as for a composition target). The model accepts the schedule
    unchanged exactly when the result equals it: every op legal where it stands, the
    check the native generator (native/include/stresscoro/generator.hpp) is held to.
    An op the model would steer elsewhere is fed as a deliberate keep-empty draw. The
    preemptions follow their ops; those of an op the model leaves out are dropped."""
    rules = dict(rules or {})
    ranges = tuple((int(f["min"]), int(f["max"])) for f in factories)
    return _build(schedule.target, ranges, schedule.slots, schedule.threads, rules,
                  _raw_draws(schedule, ranges, rules, spread), schedule.combinators,
                  schedule.custom_ops, spread=spread, preemptions=schedule.preemptions)


def _raw_draws(schedule: Schedule, ranges: tuple[tuple[int, int], ...], rules: dict,
               spread: bool) -> list[tuple[str, tuple[int, ...], int, int]]:
    """The raw draws (as _raw_op returns them) that _build turns into `schedule`, if
    the model accepts it where it stands (see rebuild)."""
    n = schedule.slots
    model = _Model([False] * n, [None] * n, [None] * n)
    raw_ops = []
    for o in schedule.ops:
        raw = list(o.args)
        sig = schedule.signature(o)
        if o.name == "make":
            raw[2] = o.args[2] - ranges[o.args[1]][0]
        elif sig is not None:
            raw[2 if o.name == "make_from" else 1] -= sig.arg_min
            raw += [0, 0] if sig.inputs else []
        elif o.name == "send":
            raw[1] = (o.args[1] - o.thread) % schedule.threads
        if spread and o.name in ("make_from", "probe"):
            raw[0] = _drawn_destination(o, model)
        steered = _steered_draws(o, sig, model, rules, spread)
        if steered is None:
            keep = _KEEP_EMPTY_ONE_IN - 1
        else:
            keep = 0
            for k, v in steered.items():
                raw[k] = v
        raw_ops.append((o.name, tuple(raw), keep, o.thread))
        model.apply(o, sig)
    return raw_ops


def _drawn_destination(o: Op, model: _Model) -> int:
    """A destination draw that gives `o`'s destination in a composition schedule. One
    that holds something worth keeping while a slot is free comes only from _build's
    fix-up after the free-slot search landed on an input (make_from) or on the awaited
    slot (probe): draw that input."""
    dst = o.args[0]
    taken = [model.occupied(s) and not model.moved[s] for s in range(len(model.live))]
    if not taken[dst] or all(taken):  # drawn as it stands (nowhere free: the slot drawn)
        return dst
    ins = list(o.inputs()) if o.name == "make_from" else [o.args[1]]
    free = [s for s in ins if not taken[s]]
    return (free or ins)[0]


def _steered_draws(o: Op, sig: Signature | None, model: _Model, rules: dict,
                   spread: bool) -> dict[int, int] | None:
    """The draws (by argument index) that steer to `o`'s slots without keeping an empty
    one, or None when no such draws exist (the op reads outside the steering mask)."""
    n = len(model.live)
    reads = _READS.get(o.name, ())
    if reads and o.name not in ("make_from", "call") and not any(model.live):
        return None  # would become a make
    usable = ([model.live[s] and not model.moved[s] for s in range(n)]
              if not rules.get("use_after_move", False) else model.live)
    occupied = [model.occupied(s) for s in range(n)] if o.name == "drop" else model.live
    out = {}
    for k, (field, v) in enumerate(zip(o.spec.fields, o.args)):
        if field not in reads or v < 0:
            continue
        mask = usable if field in _USES.get(o.name, ()) and any(usable) else occupied
        chosen = [s for s in range(n) if mask[s]]
        if v not in chosen:
            return None
        out[k] = chosen.index(v) if spread else v
    if sig is not None and sig.inputs:
        ins = o.inputs()
        taken = {o.args[0]} if o.name == "make_from" else set()
        for i, (s, mode) in enumerate(zip(ins, sig.inputs)):
            if s in taken or s in ins[:i] or not _input_ok(s, mode, o.name, model, rules):
                return None
    return out


def _written(op: Op, sig: Signature | None) -> tuple[int, ...]:
    """The slots whose frame `op` writes (resumes, touches or awaits)."""
    if op.name in ("resume", "touch", "await"):
        return (op.args[0],)
    if op.name == "probe":
        return (op.args[1],)
    if sig is not None:
        return tuple(s for s, m in zip(op.inputs(), sig.inputs) if m != "copy")
    return ()


@st.composite
def _raw_op(draw, names: tuple[str, ...], n_factories: int, widest: int, slots: int,
            threads: int, combinators: tuple[Signature, ...] = (),
            custom_ops: tuple[Signature, ...] = ()):
    """One op's draws, and only the ones it needs."""
    name = draw(st.sampled_from(names))
    return _op_draws(name, lambda _k, lo, hi: draw(st.integers(lo, hi)), n_factories, widest,
                     slots, threads, combinators, custom_ops)


def _op_draws(name: str, take, n_factories: int, widest: int, slots: int, threads: int,
              combinators: tuple[Signature, ...] = (), custom_ops: tuple[Signature, ...] = ()):
    """The draws of op `name`, in the order the strategy makes them: take(k, lo, hi)
    gives the k-th raw value (k "keep" and "thread" for the last two) in lo..hi. The
    strategy draws each from Hypothesis; schedule_choices replays given ones."""
    raw: list[int] = []
    sig = None
    for field in OPS[name].fields:
        k = len(raw)
        if field == "factory":
            raw.append(take(k, 0, n_factories - 1))
        elif field in ("combinator", "fn"):
            sigs = combinators if field == "combinator" else custom_ops
            raw.append(take(k, 0, len(sigs) - 1))
            sig = sigs[raw[-1]]
        elif field == "arg" and sig is not None:
            raw.append(take(k, 0, sig.arg_max - sig.arg_min) if sig.arg_max > sig.arg_min else 0)
        elif field == "arg":
            raw.append(take(k, 0, widest))
        elif field in ("src", "src2", "x", "y") and sig is not None:
            position = ("src", "src2", "x", "y").index(field) % 2
            raw.append(take(k, 0, slots - 1) if position < len(sig.inputs) else -1)
        elif field == "to":
            # An offset from the sender: a send always goes to another thread.
            raw.append(take(k, 1, threads - 1))
        else:
            raw.append(take(k, 0, slots - 1))
    if sig is not None and sig.inputs:
        # Factory and argument for inputs the combinator has to make itself (_build).
        raw.append(take(len(raw), 0, n_factories - 1))
        raw.append(take(len(raw), 0, widest))
    keep = take("keep", 0, _KEEP_EMPTY_ONE_IN - 1) if name in _READS else 0
    # Only an op on slots no thread holds yet (a first make) uses its own thread draw.
    thread = take("thread", 0, threads - 1) if threads > 1 and name == "make" else 0
    return name, tuple(raw), keep, thread


def _preemption_draws(take, n_ops: int, threads: int) -> tuple[int, int, int]:
    """One preemption's draws, in the order the strategy makes them: the op (0..n_ops-1),
    `after` (1..MAX_DRAWN_AFTER) and `to` as an index among the other threads, lowest
    first; take(k, lo, hi) as for _op_draws. A value with one possibility is not drawn."""
    op = take("op", 0, n_ops - 1) if n_ops > 1 else 0
    after = take("after", 1, MAX_DRAWN_AFTER)
    other = take("to", 0, threads - 2) if threads > 2 else 0
    return op, after, other


def _preempted(schedule: Schedule, drawn: Sequence[tuple[int, int, int]]) -> Schedule:
    """`schedule` with the drawn preemptions, in the schedule's order."""
    if not drawn:
        return schedule
    ops = schedule.ops
    pre = [Preemption(op, after, other + (other >= ops[op].thread)) for op, after, other in drawn]
    return schedule.replace(preemptions=ordered_preemptions(pre, ops, schedule.threads))


@st.composite
def _raw_preemption(draw, n_ops: int, threads: int):
    return _preemption_draws(lambda _k, lo, hi: draw(st.integers(lo, hi)), n_ops, threads)


@st.composite
def _planned(draw, p: "_Plan", raw_ops):
    """A schedule: the ops (raw_ops, through the model), then its preemptions."""
    s = _build(p.target, p.ranges, p.slots, p.threads, p.rules, draw(raw_ops), p.combinators,
               p.custom_ops, spread=p.composition)
    if not p.preempts or not s.ops:
        return s
    drawn = draw(st.lists(_raw_preemption(len(s.ops), p.threads),
                          max_size=MAX_DRAWN_PREEMPTIONS))
    return _preempted(s, drawn)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What schedules() draws from, its arguments settled."""

    target: str
    names: tuple[str, ...]  # the op set, in OP_ORDER (send twice)
    ranges: tuple[tuple[int, int], ...]  # each factory's (min, max)
    max_ops: int
    slots: int
    threads: int
    rules: dict
    combinators: tuple[Signature, ...]
    custom_ops: tuple[Signature, ...]
    preemptions: bool = True

    @property
    def preempts(self) -> bool:
        """Draws preemptions: asked to, and with another thread to hand the CPU to."""
        return self.preemptions and self.threads >= 2

    @property
    def composition(self) -> bool:
        return bool(self.combinators or self.custom_ops)

    @property
    def op_args(self) -> tuple:
        """_raw_op's and _op_draws's arguments after the op names."""
        widest = max(hi - lo for lo, hi in self.ranges)
        return (len(self.ranges), widest, self.slots, self.threads, self.combinators,
                self.custom_ops)


def _plan(target: str, capabilities: Collection[str], factories: Sequence[dict], *,
          max_ops: int = DEFAULT_MAX_OPS, slots: int | None = None, threads: int = 1,
          rules: dict | None = None, combinators: Sequence[Signature] = (),
          custom_ops: Sequence[Signature] = (), preemptions: bool = True) -> _Plan:
    rules = dict(rules or {})
    combinators, custom_ops = tuple(combinators), tuple(custom_ops)
    if slots is None:
        # Combinators need room: two inputs, their result, and what awaits that.
        slots = COMPOSITION_SLOTS if combinators else DEFAULT_SLOTS
    if rules.get("moves_across_threads") is False:
        threads = 1
    names = tuple(n for n in OP_ORDER if n in capabilities and (n != "send" or threads > 1)
                  and (n != "make_from" or combinators) and (n != "call" or custom_ops))
    if "send" in names:
        names += ("send",)  # hand-offs are what cross-thread schedules are about: twice as likely
    if "make" not in names:
        raise ValueError(f"target {target!r} cannot make objects; capabilities={sorted(capabilities)}")
    ranges = tuple((int(f["min"]), int(f["max"])) for f in factories)
    if not ranges:
        raise ValueError(f"target {target!r} declares no factories")
    return _Plan(target, names, ranges, max_ops, slots, threads, rules, combinators, custom_ops,
                 bool(preemptions))


def schedules(target: str, capabilities: Collection[str], factories: Sequence[dict], *,
              max_ops: int = DEFAULT_MAX_OPS, slots: int | None = None,
              threads: int = 1, rules: dict | None = None,
              combinators: Sequence[Signature] = (),
              custom_ops: Sequence[Signature] = (),
              preemptions: bool = True) -> st.SearchStrategy[Schedule]:
    """Schedules for `target` using only `capabilities` (op names) and its `factories`
    (dicts with min and max), over `slots` slots and `threads` threads, within the
    target's declared ownership `rules` (see stresscoro/adapter.hpp). With one thread,
    or a target that keeps objects on one thread, `send` is never generated.
    make_from and call are generated over the target's `combinators` and `custom_ops`
    (schedule.Signature), when it has some. `slots` defaults to DEFAULT_SLOTS, or
    COMPOSITION_SLOTS for a target with combinators. With two threads or more, each
    schedule also draws up to MAX_DRAWN_PREEMPTIONS preemptions inside its ops, unless
    `preemptions` is false."""
    p = _plan(target, capabilities, factories, max_ops=max_ops, slots=slots, threads=threads,
              rules=rules, combinators=combinators, custom_ops=custom_ops,
              preemptions=preemptions)
    if p.composition:
        raw_ops = _swarm_ops(p.names, p.op_args, p.max_ops)
    else:
        raw_ops = st.lists(_raw_op(p.names, *p.op_args), min_size=1, max_size=p.max_ops)
    return _planned(p, raw_ops)


def schedule_choices(schedule: Schedule, capabilities: Collection[str],
                     factories: Sequence[dict], **kwargs) -> tuple[int | bool, ...]:
    """The choice sequence from which schedules(schedule.target, capabilities, factories,
    **kwargs) draws `schedule`: what Hypothesis's example database keeps for an example
    (hypothesis.database.choices_to_bytes), so that a campaign over that strategy
    replays a schedule found by another engine (the native explorer, a fuzzer input)
    as if it had found it itself. The schedule may use fewer slots or threads than the
    strategy; it is drawn over the strategy's. Raises InvalidSchedule when the strategy
    cannot draw it: longer than max_ops, beyond its slots or threads, an op the model
    does not accept where it stands, or preemptions beyond what it draws."""
    p = _plan(schedule.target, capabilities, factories, **kwargs)
    if not 1 <= len(schedule.ops) <= p.max_ops:
        raise InvalidSchedule(f"the strategy draws 1 to {p.max_ops} ops", field="ops",
                              value=len(schedule.ops))
    want = schedule.replace(slots=p.slots, threads=p.threads)
    # Only a make draws its thread; every other op takes its slots' holder's.
    raw_ops = [(name, raw, keep, thread if name == "make" else 0)
               for name, raw, keep, thread in _raw_draws(want, p.ranges, p.rules, p.composition)]
    if want.preemptions and not p.preempts:
        raise InvalidSchedule("the strategy draws no preemptions", field="preemptions",
                              value=len(want.preemptions))
    if len(want.preemptions) > MAX_DRAWN_PREEMPTIONS:
        raise InvalidSchedule(f"the strategy draws 0 to {MAX_DRAWN_PREEMPTIONS} preemptions",
                              field="preemptions", value=len(want.preemptions))
    if _build(p.target, p.ranges, p.slots, p.threads, p.rules, raw_ops, p.combinators,
              p.custom_ops, spread=p.composition, preemptions=want.preemptions) != want:
        raise InvalidSchedule("the strategy's model does not draw this schedule as it stands",
                              field="ops", value=len(schedule.ops))
    names = _enabled(p.names, 0) if p.composition else p.names
    choices: list[int | bool] = [0] if p.composition else []  # swarm subset 0: every op
    for name, raw, keep, thread in raw_ops:
        choices.append(True)  # st.lists: one more element
        if len(names) > 1:
            choices.append(names.index(name))  # st.sampled_from: the index
        given = {**dict(enumerate(raw)), "keep": keep, "thread": thread}

        def take(k, lo: int, hi: int) -> int:
            if not lo <= given[k] <= hi:
                raise InvalidSchedule(f"a {name} draw is out of the strategy's {lo}..{hi}",
                                      field=str(k), value=given[k])
            choices.append(given[k])
            return given[k]

        _op_draws(name, take, *p.op_args)
    choices.append(False)  # st.lists: no more elements
    if p.preempts and want.ops:
        for k, pre in enumerate(want.preemptions):
            choices.append(True)  # st.lists: one more preemption
            thread = want.ops[pre.op].thread
            given = {"op": pre.op, "after": pre.after, "to": pre.to - (pre.to > thread)}

            def take_preemption(key, lo: int, hi: int) -> int:
                if not lo <= given[key] <= hi:
                    raise InvalidSchedule(f"a preemption draw is out of the strategy's {lo}..{hi}",
                                          preemption=k, field=key, value=given[key])
                choices.append(given[key])
                return given[key]

            _preemption_draws(take_preemption, len(want.ops), p.threads)
        choices.append(False)  # st.lists: no more preemptions
    return tuple(choices)


_COMPOSITION_WEIGHTED = frozenset({"make_from", "probe", "call", "step", "resume", "drop"})
SWARM_SUBSETS = 63
SWARM_KEEP = 0.4


def _subset(names: tuple[str, ...], which: int) -> tuple[str, ...]:
    """Op set number `which` of a swarm: 0 is every op; others keep make and each other
    op with probability SWARM_KEEP (deterministic in `which`)."""
    if which == 0:
        return names
    pick = random.Random(which)
    kept = tuple(n for n in names if n == "make" or pick.random() < SWARM_KEEP)
    return kept if len(kept) > 1 else names


@st.composite
def _swarm_ops(draw, names: tuple[str, ...], op_args: tuple, max_ops: int):
    """Swarm testing: each schedule draws from a random subset of the ops. A bug that
    needs three or four particular ops in a row is far likelier when the ops that
    would disturb them are left out; subset 0 (all ops) is where shrinking heads."""
    enabled = _enabled(names, draw(st.integers(0, SWARM_SUBSETS)))
    return draw(st.lists(_raw_op(enabled, *op_args), min_size=1, max_size=max_ops))


def _enabled(names: tuple[str, ...], which: int) -> tuple[str, ...]:
    """The op names a swarm schedule samples from: subset `which`, where the ops that
    relate, drive and break objects count twice (copies, swaps and assignments matter
    less between coroutines than who awaits whom and who is gone)."""
    subset = _subset(names, which)
    return subset + tuple(n for n in subset if n in _COMPOSITION_WEIGHTED)


def session_arguments(session, **kwargs) -> dict:
    """schedules()'s arguments after the target's name, for an open stresscoro
    TargetSession: what its target declares, then `kwargs` (max_ops, threads, ...)."""
    kwargs.setdefault("rules", session.rules)
    kwargs.setdefault("combinators", session.combinators)
    kwargs.setdefault("custom_ops", session.custom_ops)
    return dict(capabilities=session.capabilities, factories=session.factories, **kwargs)


def schedules_for(session, **kwargs) -> st.SearchStrategy[Schedule]:
    """Schedules for an open stresscoro TargetSession."""
    return schedules(session.target.name, **session_arguments(session, **kwargs))


def _arg_choices(lo: int, hi: int) -> tuple[int, ...]:
    return tuple(sorted({lo, min(lo + 1, hi), hi}))


def enumerate_schedules(target: str, capabilities: Collection[str], factories: Sequence[dict],
                        length: int, *, slots: int = COMPOSITION_SLOTS, rules: dict | None = None,
                        combinators: Sequence[Signature] = (),
                        custom_ops: Sequence[Signature] = ()):
    """Every single-thread schedule of exactly `length` ops that the strategies could
    generate (same legality model and preconditions), up to renaming slots: a new object
    goes into the lowest free slot. Integer arguments are taken from {min, min + 1, max}.
    For proving a seeded bug's minimal length: no shorter schedule shows it."""
    rules = dict(rules or {})
    combinators, custom_ops = tuple(combinators), tuple(custom_ops)
    names = [n for n in OP_ORDER if n in capabilities and n != "send"
             and (n != "make_from" or combinators) and (n != "call" or custom_ops)]

    def candidates(model: _Model):
        occupied = [model.occupied(s) for s in range(slots)]
        free = [s for s in range(slots) if not occupied[s]]
        targets_ = [s for s in range(slots) if occupied[s]] + free[:1]
        live = [s for s in range(slots) if model.live[s]]
        for n in names:
            if n == "make":
                for s in targets_:
                    for f, fac in enumerate(factories):
                        for a in _arg_choices(int(fac["min"]), int(fac["max"])):
                            yield Op(n, (s, f, a)), None
            elif n in ("copy", "move"):
                for src in live:
                    for dst in targets_:
                        if dst != src:
                            yield Op(n, (src, dst)), None
            elif n in ("copy_assign", "move_assign", "swap"):
                for x in live:
                    for y in live:
                        if n != "swap" or x <= y:
                            yield Op(n, (x, y)), None
            elif n in ("resume", "touch", "await"):
                for s in live:
                    yield Op(n, (s,)), None
            elif n == "drop":
                for s in range(slots):
                    if occupied[s]:
                        yield Op(n, (s,)), None
            elif n == "step":
                yield Op(n, ()), None
            elif n == "probe":
                for src in live:
                    for dst in targets_:
                        if dst != src:
                            yield Op(n, (dst, src)), None
            elif n in ("make_from", "call"):
                sigs = combinators if n == "make_from" else custom_ops
                for w, sig in enumerate(sigs):
                    pools = [live] * len(sig.inputs)
                    combos = [()]
                    for pool in pools:
                        combos = [c + (s,) for c in combos for s in pool]
                    for a in _arg_choices(sig.arg_min, sig.arg_max):
                        for ins in combos:
                            padded = ins + (-1,) * (2 - len(ins))
                            if n == "call":
                                yield Op(n, (w, a, *padded)), sig
                                continue
                            for dst in targets_:
                                if dst not in ins:
                                    yield Op(n, (dst, w, a, *padded)), sig

    def extend(model: _Model, ops: list[Op], remaining: int):
        if remaining == 0:
            yield Schedule(target=target, ops=tuple(ops), slots=slots, threads=1,
                           combinators=combinators, custom_ops=custom_ops)
            return
        for op, sig in list(candidates(model)):
            if _breaks_precondition(op, sig, model, rules):
                continue
            if op.name in ("make_from", "call") and not all(
                    _input_ok(s, m, op.name, model, rules) for s, m in zip(op.inputs(), sig.inputs)):
                continue
            child = copy.deepcopy(model)
            child.apply(op, sig)
            yield from extend(child, ops + [op], remaining - 1)

    yield from extend(_Model([False] * slots, [None] * slots, [None] * slots), [], length)


def drive_suffixes(schedule: Schedule, capabilities: Collection[str],
                   factories: Sequence[dict] | None = None, rules: dict | None = None,
                   spread: bool = False) -> list[Schedule]:
    """The schedule followed by one op that drives the library on: a resume of each
    object it leaves alive (newest first) and one step(). Composition bugs end with such
    a drive (the child finishes and resumes its freed parent); running these variants
    beside each generated schedule reaches them far more often than drawing that last op.
    With two threads or more the resume runs on the thread that holds the object, and
    only schedules the model accepts as they stand are given (`factories` and `rules`,
    for strategies.rebuild; without them, single-threaded schedules only); ops the
    declared preconditions forbid are not added."""
    if not schedule.ops or (schedule.threads != 1 and factories is None):
        return []
    end = schedule.simulate()[-1]
    moved = _moved_from(schedule)
    out = []
    if "resume" in capabilities:
        for slot in sorted((s for s, st in end.items() if st.live and s not in moved),
                           key=lambda s: -end[s].born):
            out.append(dataclasses.replace(
                schedule, ops=schedule.ops + (Op("resume", (slot,), end[slot].holder or 0),)))
    if "step" in capabilities:
        out.append(dataclasses.replace(schedule, ops=schedule.ops + (Op("step", ()),)))
    if schedule.threads != 1:
        out = [c for c in out if _accepted(c, factories, rules, spread)]
    return out


def _accepted(schedule: Schedule, factories: Sequence[dict], rules: dict | None,
              spread: bool) -> bool:
    try:
        return rebuild(schedule, factories, rules, spread=spread) == schedule
    except InvalidSchedule:
        return False


INTERLEAVINGS_PER_SCHEDULE = 6


def interleavings(schedule: Schedule, points: dict[int, int],
                  limit: int = INTERLEAVINGS_PER_SCHEDULE) -> list[Schedule]:
    """The schedule with one preemption inside an op, where a run of it passed sync
    points (`points`: op -> how many), at most `limit` of them: every op's first sync
    point (the latest ops first), then every op's second, and so on, each handing the CPU
    to each other thread. Bugs that need another thread between two atomic operations of
    one op (a check-then-act release, a lost wake-up) are reached this way far more often
    than by drawing the preemption with the ops; the latest ops first because a shrunk
    schedule ends where its bug is, and the choice depends on nothing else, so that
    shrinking sees the same preemptions tried. Schedules that already carry preemptions,
    or run on one thread, get none."""
    if schedule.threads < 2 or schedule.preemptions or not points:
        return []
    ops = schedule.ops
    latest = sorted((i for i in points if i < len(ops)), reverse=True)
    out = []
    for after in range(1, min(max(points.values()), MAX_AFTER) + 1):
        for i in latest:
            if after > points[i]:
                continue
            for to in range(schedule.threads):
                if to != ops[i].thread:
                    out.append(dataclasses.replace(schedule, preemptions=(Preemption(i, after, to),)))
                    if len(out) == limit:
                        return out
    return out


def _moved_from(schedule: Schedule) -> set[int]:
    """Slots holding a moved-from object at the end (resuming one is a precondition)."""
    states = schedule.simulate()
    moved: set[int] = set()
    for i, o in enumerate(schedule.ops):
        before = states[i - 1] if i else {}
        live = lambda s: s in before and before[s].live  # noqa: E731
        if o.name == "make" or (o.name == "probe" and live(o.args[1]) and o.args[0] != o.args[1]) \
                or (o.name == "make_from" and all(live(s) for s in o.inputs())):
            moved.discard(o.args[0])
        if o.name == "move" and live(o.args[0]) and o.args[0] != o.args[1]:
            moved.discard(o.args[1])
            moved.add(o.args[0])
        elif o.name == "copy" and live(o.args[0]):
            moved.discard(o.args[1])
        elif o.name in ("move_assign", "copy_assign") and live(o.args[0]) and live(o.args[1]):
            was = o.args[0] in moved
            moved.discard(o.args[1])
            if was:
                moved.add(o.args[1])
            if o.name == "move_assign":
                moved.add(o.args[0])
        elif o.name == "swap" and live(o.args[0]) and live(o.args[1]):
            a, b = o.args
            if (a in moved) != (b in moved):
                moved ^= {a, b}
        elif o.name == "drop":
            moved.discard(o.args[0])
        sig = schedule.signature(o)
        if sig is not None and all(live(s) for s in o.inputs()):
            for s, mode in zip(o.inputs(), sig.inputs):
                if mode == "move":
                    moved.add(s)
                elif mode == "consume":
                    moved.discard(s)
    return moved
