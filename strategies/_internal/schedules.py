"""Schedules a target can run, drawn so that Hypothesis shrinks them well.

Shrinking goes toward fewer ops (a flat list), lower slot numbers, the first factory,
the smallest argument and the ops listed first in OP_ORDER. A slot an op reads from
is steered onto a live slot unless the draw deliberately keeps an empty one: using an
empty or moved-from object is itself worth testing, but rarely.
"""

from __future__ import annotations

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
# One draw in this many keeps an empty slot where a live one was expected.
_KEEP_EMPTY_ONE_IN = 16


def _steer(slot: int, live: Sequence[bool], keep_empty: bool) -> int:
    """The drawn slot if live (or kept empty on purpose), else the next live slot."""
    if live[slot] or keep_empty or not any(live):
        return slot
    n = len(live)
    return next(s % n for s in range(slot, slot + n) if live[s % n])


def _build(target: str, factories: tuple[tuple[int, int], ...], slots: int,
           raw_ops: list[tuple[str, tuple[int, ...], int]]) -> Schedule:
    """Turn raw draws into a schedule, steering reads onto live slots as it goes."""
    live = [False] * slots
    ops: list[Op] = []
    for name, raw, keep in raw_ops:
        keep_empty = keep == _KEEP_EMPTY_ONE_IN - 1
        reads = _READS.get(name, ())
        args = []
        for field, value in zip(OPS[name].fields, raw):
            if field == "arg":
                lo, hi = factories[args[-1]]
                value = lo + min(value, hi - lo)
            elif field in reads:
                value = _steer(value, live, keep_empty)
            args.append(value)
        op = Op(name, tuple(args))
        _apply(op, live)
        ops.append(op)
    return Schedule(target=target, ops=tuple(ops), slots=slots, threads=1)


@st.composite
def _raw_op(draw, names: tuple[str, ...], n_factories: int, widest: int, slots: int):
    """One op's draws, and only the ones it needs: a shape Hypothesis deletes cleanly."""
    name = draw(st.sampled_from(names))
    raw = []
    for field in OPS[name].fields:
        if field == "factory":
            raw.append(draw(st.integers(0, n_factories - 1)))
        elif field == "arg":
            raw.append(draw(st.integers(0, widest)))
        elif field == "to":
            raw.append(0)
        else:
            raw.append(draw(st.integers(0, slots - 1)))
    keep = draw(st.integers(0, _KEEP_EMPTY_ONE_IN - 1)) if name in _READS else 0
    return name, tuple(raw), keep


def _apply(op: Op, live: list[bool]) -> None:
    """Track which slots hold an object, as the driver does."""
    if op.name == "make":
        live[op.args[0]] = True
    elif op.name in ("copy", "move"):
        src, dst = op.args
        if live[src] and src != dst:
            live[dst] = True
    elif op.name == "drop":
        live[op.args[0]] = False


def schedules(target: str, capabilities: Collection[str], factories: Sequence[dict], *,
              max_ops: int = DEFAULT_MAX_OPS, slots: int = DEFAULT_SLOTS) -> st.SearchStrategy[Schedule]:
    """Schedules for `target` using only `capabilities` (op names) and its `factories`
    (dicts with min and max), single-threaded."""
    names = tuple(n for n in OP_ORDER if n in capabilities and n != "send")
    if "make" not in names:
        raise ValueError(f"target {target!r} cannot make objects; capabilities={sorted(capabilities)}")
    ranges = tuple((int(f["min"]), int(f["max"])) for f in factories)
    if not ranges:
        raise ValueError(f"target {target!r} declares no factories")
    widest = max(hi - lo for lo, hi in ranges)
    raw_op = _raw_op(names, len(ranges), widest, slots)
    return st.lists(raw_op, min_size=1, max_size=max_ops).map(
        lambda raw: _build(target, ranges, slots, raw))


def schedules_for(session, **kwargs) -> st.SearchStrategy[Schedule]:
    """Schedules for an open stresscoro TargetSession."""
    return schedules(session.target.name, session.capabilities, session.factories, **kwargs)
