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
  objects may not change threads (rules.moves_across_threads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from hypothesis import strategies as st

from stresscoro.schedule import OPS, Op, Schedule

DEFAULT_MAX_OPS = 12
DEFAULT_SLOTS = 3
# Shrinking prefers ops early in this list.
OP_ORDER = ("make", "copy", "move", "resume", "drop", "copy_assign", "move_assign", "swap",
            "touch", "await", "send")
# Fields that must name a live object for the op to do anything.
_READS = {"copy": ("src",), "move": ("src",), "copy_assign": ("src", "dst"),
          "move_assign": ("src", "dst"), "swap": ("a", "b"), "resume": ("slot",),
          "drop": ("slot",), "touch": ("slot",), "await": ("slot",), "send": ("slot",)}
_WRITES_FRAME = ("resume", "touch", "await")
# One draw in this many keeps an empty slot where a live one was expected.
_KEEP_EMPTY_ONE_IN = 16


def _steer(slot: int, live: Sequence[bool], keep_empty: bool) -> int:
    """The drawn slot if live (or kept empty on purpose), else the next live slot."""
    if live[slot] or keep_empty or not any(live):
        return slot
    n = len(live)
    return next(s % n for s in range(slot, slot + n) if live[s % n])


@dataclasses.dataclass
class _Model:
    """What generation needs to know after each op: liveness, holders, copy families."""

    live: list[bool]
    holder: list[int | None]
    family: list[int | None]  # slots sharing a frame through copies share a family
    writer: dict[int, int] = dataclasses.field(default_factory=dict)  # family -> thread
    families: int = 0

    def apply(self, op: Op) -> None:
        n, a, t = op.name, op.args, op.thread
        if n == "make":
            self.live[a[0]], self.holder[a[0]] = True, t
            self.family[a[0]], self.families = self.families, self.families + 1
        elif n in ("copy", "move"):
            src, dst = a
            if self.live[src] and src != dst:
                self.live[dst], self.holder[dst], self.family[dst] = True, t, self.family[src]
                if n == "move":
                    self.family[src] = None
        elif n in ("copy_assign", "move_assign"):
            src, dst = a
            if self.live[src] and self.live[dst] and (src != dst or n == "copy_assign"):
                self.family[dst] = self.family[src]
                if n == "move_assign":
                    self.family[src] = None
        elif n == "swap":
            x, y = a
            if self.live[x] and self.live[y]:
                self.family[x], self.family[y] = self.family[y], self.family[x]
        elif n == "drop":
            self.live[a[0]], self.family[a[0]] = False, None
            self.holder[a[0]] = t
        elif n == "send":
            if self.live[a[0]]:
                self.holder[a[0]] = a[1]

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


def _build(target: str, factories: tuple[tuple[int, int], ...], slots: int, threads: int,
           rules: dict, raw_ops: list[tuple[str, tuple[int, ...], int, int]]) -> Schedule:
    """Turn raw draws into a legal schedule (see the module docstring)."""
    model = _Model([False] * slots, [None] * slots, [None] * slots)
    ops: list[Op] = []
    for name, raw, keep, drawn_thread in raw_ops:
        keep_empty = keep == _KEEP_EMPTY_ONE_IN - 1
        if name in _READS and not keep_empty and not any(model.live):
            # Nothing to read yet: make something instead of wasting the op.
            name, raw = "make", (raw[0], 0, 0)
        reads = _READS.get(name, ())
        args = []
        for field, value in zip(OPS[name].fields, raw):
            if field == "arg":
                lo, hi = factories[args[-1]]
                value = lo + min(value, hi - lo)
            elif field in reads:
                value = _steer(value, model.live, keep_empty)
            args.append(value)
        op = Op(name, tuple(args))
        thread = model.thread_for(op.slots(), drawn_thread)
        if thread is None:
            continue
        if name == "send":
            if rules.get("copies_dropped_across_threads") is False and model.shared(args[0]):
                continue  # this library does not promise copies may part across threads
            op = Op(name, (args[0], (thread + args[1]) % threads))
        if name in _WRITES_FRAME and not rules.get("resume_from_any_thread"):
            if not model.may_write(args[0], thread):
                continue
            model.wrote(args[0], thread)
        op = Op(name, op.args, thread)
        model.apply(op)
        ops.append(op)
    return Schedule(target=target, ops=tuple(ops), slots=slots, threads=threads)


@st.composite
def _raw_op(draw, names: tuple[str, ...], n_factories: int, widest: int, slots: int,
            threads: int):
    """One op's draws, and only the ones it needs."""
    name = draw(st.sampled_from(names))
    raw = []
    for field in OPS[name].fields:
        if field == "factory":
            raw.append(draw(st.integers(0, n_factories - 1)))
        elif field == "arg":
            raw.append(draw(st.integers(0, widest)))
        elif field == "to":
            # An offset from the sender: a send always goes to another thread.
            raw.append(draw(st.integers(1, threads - 1)))
        else:
            raw.append(draw(st.integers(0, slots - 1)))
    keep = draw(st.integers(0, _KEEP_EMPTY_ONE_IN - 1)) if name in _READS else 0
    # Only an op on slots no thread holds yet (a first make) uses its own thread draw.
    thread = draw(st.integers(0, threads - 1)) if threads > 1 and name == "make" else 0
    return name, tuple(raw), keep, thread


def schedules(target: str, capabilities: Collection[str], factories: Sequence[dict], *,
              max_ops: int = DEFAULT_MAX_OPS, slots: int = DEFAULT_SLOTS,
              threads: int = 1, rules: dict | None = None) -> st.SearchStrategy[Schedule]:
    """Schedules for `target` using only `capabilities` (op names) and its `factories`
    (dicts with min and max), over `slots` slots and `threads` threads, within the
    target's declared ownership `rules` (see stresscoro/adapter.hpp). With one thread,
    or a target that keeps objects on one thread, `send` is never generated."""
    rules = dict(rules or {})
    if rules.get("moves_across_threads") is False:
        threads = 1
    names = tuple(n for n in OP_ORDER if n in capabilities and (n != "send" or threads > 1))
    if "send" in names:
        names += ("send",)  # hand-offs are what cross-thread schedules are about: twice as likely
    if "make" not in names:
        raise ValueError(f"target {target!r} cannot make objects; capabilities={sorted(capabilities)}")
    ranges = tuple((int(f["min"]), int(f["max"])) for f in factories)
    if not ranges:
        raise ValueError(f"target {target!r} declares no factories")
    widest = max(hi - lo for lo, hi in ranges)
    raw_op = _raw_op(names, len(ranges), widest, slots, threads)
    return st.lists(raw_op, min_size=1, max_size=max_ops).map(
        lambda raw: _build(target, ranges, slots, threads, rules, raw))


def schedules_for(session, **kwargs) -> st.SearchStrategy[Schedule]:
    """Schedules for an open stresscoro TargetSession."""
    kwargs.setdefault("rules", session.rules)
    return schedules(session.target.name, session.capabilities, session.factories, **kwargs)
