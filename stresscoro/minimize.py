"""Schedule shrinking without Hypothesis: shorter and simpler candidates of a schedule
(first each preemption removed, its sync point lowered, its thread lowered; then chunks of
ops deleted; an op that makes an object bypassed; a drop and a later resume of another
object merged into one probe, which empties its slot and awaits the object; an op
replaced by a resume or by a drop of one of its slots; then slots, factories, arguments
and threads lowered), each passed through the legality model (strategies.rebuild, so a
candidate is always a schedule the generator could draw) and kept when it still fails.
Preemptions follow their ops through every change (Schedule.replace with `origin`):
those of a deleted op go with it. Greedy to a fixed point: no single deletion or
lowering keeps the finding. Used by the native engine's findings (shrink.py) and after
a Hypothesis search, on a finding whose schedule carries a preemption the campaign
added (runner.Campaign)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence

from .schedule import InvalidSchedule, Op, Preemption, Schedule, ordered_preemptions
from .strategies import OP_ORDER, rebuild

_RANK = {name: k for k, name in enumerate(OP_ORDER)}


def _size(s: Schedule) -> tuple:
    """Smaller is simpler: fewer preemptions, then fewer ops, then simpler ops (earlier in
    strategies.OP_ORDER), then lower threads and arguments, then earlier sync points and
    lower threads handed the CPU."""
    return (len(s.preemptions), len(s.ops), sum(_RANK.get(o.name, len(_RANK)) for o in s.ops),
            sum(o.thread for o in s.ops),
            sum(abs(v) for o in s.ops for v in o.args),
            sum(p.after for p in s.preemptions), sum(p.to for p in s.preemptions))


def _candidates(s: Schedule, factories: Sequence[dict],
                capabilities: Collection[str]) -> Iterator[dict]:
    """Changes to try on `s`, simplest first, as Schedule.replace's arguments."""
    yield from _preemption_candidates(s)
    ops = s.ops
    n = len(ops)
    every = range(n)
    k = n // 2
    while k >= 1:  # chunks, largest first, from the end (later ops depend on earlier)
        for start in range(n - k, -1, -1):
            yield {"ops": ops[:start] + ops[start + k:],
                   "origin": [*every[:start], *every[start + k:]]}
        k //= 2
    for j, o in enumerate(ops):  # bypass: drop an op that makes dst from src; later uses take src
        made = _made_from(o)
        if made is not None:
            dst, src = made
            yield {"ops": ops[:j] + tuple(_renamed(later, dst, src) for later in ops[j + 1:]),
                   "origin": [*every[:j], *every[j + 1:]]}
    for j, o in enumerate(ops):  # bypass a send: its slot's later ops stay on the sender
        if o.name != "send" or o.args[1] == o.thread:
            continue
        x, to = o.args
        later = []
        for after in ops[j + 1:]:
            if after.name == "send" and after.args[0] == x:
                later.append(after)  # sent on again: what follows is that send's
                break
            later.append(Op(after.name, after.args, o.thread)
                         if x in after.slots() and after.thread == to else after)
        rest = ops[j + 1 + len(later):]
        yield {"ops": ops[:j] + tuple(later) + rest, "origin": [*every[:j], *every[j + 1:]]}
    if "probe" in capabilities:  # merge: drop(x) ... resume(y) -> ... probe(x, y)
        for i, o in enumerate(ops):
            if o.name != "drop":
                continue
            for j in range(i + 1, n):
                later = ops[j]
                if later.name in ("resume", "await"):
                    merged = Op("probe", (o.args[0], later.args[0]), later.thread)
                    # The probe takes the resume's place, and its preemptions.
                    yield {"ops": ops[:i] + ops[i + 1:j] + (merged,) + ops[j + 1:],
                           "origin": [*every[:i], *every[i + 1:]]}
    for i, o in enumerate(ops):
        simpler = [Op("resume", (v,), o.thread) for v in o.slots()
                   if o.name != "resume" and "resume" in capabilities]
        # An op that lets go of an object (an assignment over it, a combinator consuming
        # it) may only need the letting go: a drop of one of its slots.
        simpler += [Op("drop", (v,), o.thread) for v in o.slots()
                    if o.name not in ("drop", "make", "send")]
        # A combinator that shares its first input's frame may only need the sharing.
        if o.name == "make_from" and "copy" in capabilities:
            simpler.append(Op("copy", (o.args[3], o.args[0]), o.thread))
        for f, v in zip(o.spec.fields, o.args):  # lower slot numbers
            if f in _SLOT_FIELDS and v > 0:
                for lower in range(v):
                    simpler.append(_renamed(o, v, lower, only=f))
        if o.name == "make":
            lo = int(factories[0]["min"])
            if o.args[1] or o.args[2] != lo:
                simpler.append(Op("make", (o.args[0], 0, lo), o.thread))
            flo = int(factories[o.args[1]]["min"])
            if o.args[2] != flo:
                simpler.append(Op("make", (o.args[0], o.args[1], flo), o.thread))
        if o.thread:
            simpler.append(Op(o.name, o.args, 0))
        if o.name == "make_from" and o.args[2]:
            sig = s.signature(o)
            if sig is not None and o.args[2] != sig.arg_min:
                simpler.append(Op(o.name, (*o.args[:2], sig.arg_min, *o.args[3:]), o.thread))
        # With the preemptions at their ops' first sync points too: a simpler op can change
        # how many sync points come before the one that mattered, in it or in a later op
        # that now lets go of a different object.
        first = tuple(Preemption(p.op, 1, p.to) for p in s.preemptions)
        for c in simpler:  # in place: the op keeps its preemptions (not any to its thread)
            yield {"ops": ops[:i] + (c,) + ops[i + 1:]}
            if first != s.preemptions:
                yield {"ops": ops[:i] + (c,) + ops[i + 1:],
                       "preemptions": ordered_preemptions(first, ops, s.threads)}


def _preemption_candidates(s: Schedule) -> Iterator[dict]:
    """Each preemption removed; then each one's sync point lowered (to the first, then
    halfway, then by one), then the thread it hands the CPU to lowered."""
    pre = s.preemptions
    for k in range(len(pre)):
        yield {"preemptions": pre[:k] + pre[k + 1:]}
    for k, p in enumerate(pre):
        for after in sorted({1, p.after // 2, p.after - 1} - {0, p.after}):
            yield {"preemptions": _changed(s, k, Preemption(p.op, after, p.to))}
    for k, p in enumerate(pre):
        for to in range(p.to):
            if to != s.ops[p.op].thread:
                yield {"preemptions": _changed(s, k, Preemption(p.op, p.after, to))}


def _changed(s: Schedule, k: int, p: Preemption) -> tuple[Preemption, ...]:
    """s's preemptions with the k-th replaced by `p`, in order (one that lands on
    another's (op, after) goes)."""
    pre = list(s.preemptions)
    pre[k] = p
    return ordered_preemptions(pre, s.ops, s.threads)


_SLOT_FIELDS = ("slot", "src", "dst", "a", "b", "src2", "x", "y")


def _made_from(o: Op) -> tuple[int, int] | None:
    """(dst, src) of an op that makes dst's object out of src's."""
    if o.name in ("copy", "move"):
        return o.args[1], o.args[0]
    if o.name == "make_from":
        return o.args[0], o.args[3]
    return None


def _renamed(o: Op, old: int, new: int, only: str | None = None) -> Op:
    args = tuple(new if f in _SLOT_FIELDS and v == old and (only is None or f == only) else v
                 for f, v in zip(o.spec.fields, o.args))
    return Op(o.name, args, o.thread)


def shrink(schedule: Schedule, fails: Callable[[Schedule], bool], factories: Sequence[dict],
           rules: dict, capabilities: Collection[str] = ()) -> tuple[Schedule, int]:
    """The smallest schedule found from `schedule` for which fails() holds, and how many
    candidates were run. fails(schedule) is assumed true."""
    best, runs, seen = schedule, 0, {schedule}
    improved = True
    while improved:
        improved = False
        for changes in _candidates(best, factories, capabilities):
            try:
                cand = rebuild(best.replace(**changes), factories, rules)
            except InvalidSchedule:
                continue
            if cand in seen or _size(cand) >= _size(best):
                continue
            seen.add(cand)
            runs += 1
            if fails(cand):
                best, improved = cand, True
                break
    return best, runs
