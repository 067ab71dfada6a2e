"""Ways of generating schedules, compared on finding and shrinking the seeded bugs.

No worker runs: each seeded bug is replaced by a pure-Python predicate that models when
it fires (below), so the comparison is cheap, deterministic per seed, and measures the
generation and shrinking alone. The strategies, each producing stresscoro Schedules
for the same target capabilities, factories, slots (3), threads and max ops (12) as a
campaign:

  (a) steered   stresscoro.strategies.schedules: a per-op composite inside st.lists,
                each op drawing only its fields, mapped through the legality model that
                steers reads onto live slots (the current strategy).
  (b) flat      st.lists(st.tuples(sampled_from(names), slot, slot, factory, arg, thread,
                to)): every field drawn for every op, then the op's fields read off the
                tuple, no steering.
  (c) stateful  a RuleBasedStateMachine that only builds the schedule: one rule per op,
                preconditions and st.data() draws that pick live slots held by the op's
                thread; an invariant raises as soon as the predicate holds. Run with
                run_state_machine_as_test, stateful_step_count = max ops.
  (d) bytes     st.binary(max_size=6 * max ops) decoded in order: a name byte, a thread
                byte (with several threads), then one byte per field the op has (two for
                a make's arg); reads past the end give zeros; no steering.
  (e) bytes+steer   (extra) the same bytes read in (a)'s draw layout (fields, a keep-
                empty byte for an op that reads a slot, a thread byte for a make only)
                and passed through (a)'s legality model (strategies/_internal/
                schedules.py's _build), to tell the encoding's effect from the steering's.

Unsteered strategies (b), (d) only leave out ops no thread could run (an op whose slot
another thread holds), which Schedule itself rejects; with one thread that never happens.
Only (a) and (e) apply the target's ownership rules (one writing thread per frame family,
no send of a copy unless copies may be dropped across threads); no predicate here needs
what those rules forbid.

Predicates, each with the target whose capabilities and factories it uses (read from
the built targets) and the known minimal op count (end-of-schedule drops are free):

  copy-owning-task   copyable-task        a copy of a slot that holds a frame       2
  leak-unfinished    leaky-task           any make                                  1
  nested-resume      nested-chain-task    resume of a frame made with arg >= 1974   2
  relaxed-refcount   relaxed-shared-task  (2 threads) the thread that drops the     4
                     last owner is not ordered (vector clocks: a send orders the
                     sender's earlier ops before the receiver's next turn; turn
                     hand-offs and relaxed decrements order nothing) after another
                     thread's touch/resume of that frame: make, copy, send, touch.
                     (DESIGN's 6 also counts the two drops, which the end-of-
                     schedule drops do for free.)

The slot model mirrors the driver (native/include/stresscoro/driver.hpp): moved-from
objects stay constructed with no frame; copy/move skip a source that is not
constructed; assignments and swap need both constructed.

For each strategy, predicate and seed (5 seeds, Hypothesis's own search and shrinking,
the campaign's settings: database=None, deadline=None, health checks suppressed):
examples to the first failure, calls until the final (minimal) example first ran, the
final example's op count against the known minimum, and (one run per strategy and
predicate, no-op body) the bare generation rate in examples/s.

Run by hand from the repository root:

    .venv/bin/python bench/strategies.py [--seeds 5] [--max-examples 1000] [--rate-examples 1000]
                                         [--only a,b,c,d,e] [--predicates copy-owning-task,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, Verbosity, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stresscoro.schedule import OPS, Op, Schedule  # noqa: E402
from stresscoro.strategies import DEFAULT_MAX_OPS, DEFAULT_SLOTS, OP_ORDER, schedules  # noqa: E402
from stresscoro.strategies._internal.schedules import _KEEP_EMPTY_ONE_IN, _READS, _build  # noqa: E402

DEEP_CHAIN = 1974  # nested-chain-task overflows its stack from this chain depth on
WRITES = ("touch", "resume")


# -- the targets' shapes (as their built modules describe them) -------------------------

@dataclasses.dataclass(frozen=True)
class Shape:
    target: str
    capabilities: frozenset[str]
    factories: tuple[dict, ...]
    threads: int
    rules: tuple[tuple[str, bool], ...] = ()  # the adapter's ownership rules

    @property
    def names(self) -> tuple[str, ...]:
        """Op names in the order the current strategy uses (shrinks toward the first)."""
        return tuple(n for n in OP_ORDER if n in self.capabilities
                     and (n != "send" or self.threads > 1))

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        return tuple((f["min"], f["max"]) for f in self.factories)


TASK_FACTORIES = ({"name": "value", "min": 0, "max": 100}, {"name": "sum", "min": 0, "max": 8})
TASK_CAPS = frozenset({"await", "drop", "make", "move", "move_assign", "resume", "send", "swap"})
# Every built-in target declares these, but for copies_dropped_across_threads, which only
# the shared tasks promise.
RULES = (("moves_across_threads", True), ("copies_dropped_across_threads", False),
         ("resume_finished", True), ("resume_from_any_thread", False))
SHARED_RULES = tuple((k, True if k == "copies_dropped_across_threads" else v) for k, v in RULES)
SHARED_CAPS = frozenset({"copy", "copy_assign", "drop", "make", "move", "move_assign", "resume",
                         "send", "swap", "touch"})


# -- the model the predicates read ------------------------------------------------------

@dataclasses.dataclass
class Frame:
    arg: int
    owners: int = 1
    writes: list = dataclasses.field(default_factory=list)  # (thread, that thread's clock)


class Model:
    """Replays ops like the driver, then the end-of-schedule drops, noting what fired."""

    def __init__(self, slots: int, threads: int) -> None:
        self.constructed = [False] * slots
        self.frame: list[Frame | None] = [None] * slots
        self.holder: list[int | None] = [None] * slots
        self.clock = [[0] * threads for _ in range(threads)]  # vector clock per thread
        self.mail: list[list[int] | None] = [None] * threads
        self.threads = threads
        self.made = self.copied_owner = self.deep_resume = self.race = False

    def _turn(self, t: int) -> None:
        box = self.mail[t]
        if box is not None:  # collect_mail: the mailbox mutex orders the sends before
            self.clock[t] = [max(a, b) for a, b in zip(self.clock[t], box)]
            self.mail[t] = None
        self.clock[t][t] += 1

    def _release(self, f: Frame | None, t: int) -> None:
        if f is None:
            return
        f.owners -= 1
        if f.owners == 0 and any(w != t and self.clock[t][w] < c for w, c in f.writes):
            self.race = True  # destroyed on t, not ordered after another thread's write

    def _empty(self, s: int, t: int) -> None:
        if self.constructed[s]:
            self._release(self.frame[s], t)
        self.constructed[s], self.frame[s] = False, None

    def apply(self, op: Op) -> None:
        n, a, t = op.name, op.args, op.thread
        self._turn(t)
        c, fr = self.constructed, self.frame
        if n == "make":
            s, _, arg = a
            self._empty(s, t)
            self.made = True
            c[s], fr[s], self.holder[s] = True, Frame(arg, writes=[(t, self.clock[t][t])]), t
        elif n in ("copy", "move"):
            x, y = a
            if not c[x] or x == y:
                return
            f = fr[x]
            if n == "copy" and f is not None:
                self.copied_owner = True
                f.owners += 1
            self._empty(y, t)
            c[y], fr[y], self.holder[y] = True, f, t
            if n == "move":
                fr[x] = None
        elif n in ("copy_assign", "move_assign"):
            x, y = a
            if not (c[x] and c[y]) or (n == "move_assign" and x == y):
                return
            f = fr[x]
            if n == "copy_assign" and f is not None:
                self.copied_owner = True
                f.owners += 1
            self._release(fr[y], t)
            fr[y] = f
            if n == "move_assign":
                fr[x] = None
        elif n == "swap":
            x, y = a
            if c[x] and c[y]:
                fr[x], fr[y] = fr[y], fr[x]
        elif n == "drop":
            self._empty(a[0], t)
            self.holder[a[0]] = t
        elif n == "send":
            s, to = a
            if c[s]:
                box = self.mail[to] or [0] * self.threads
                self.mail[to] = [max(p, q) for p, q in zip(box, self.clock[t])]
                self.holder[s] = to
        elif n in WRITES or n == "await":
            f = fr[a[0]] if c[a[0]] else None
            if f is not None:
                if n == "resume" and f.arg >= DEEP_CHAIN:
                    self.deep_resume = True
                if n in WRITES:
                    f.writes.append((t, self.clock[t][t]))

    def finish(self) -> None:
        """The end-of-schedule drops: threads in order, each its live slots ascending."""
        for t in range(self.threads):
            self._turn(t)
            for s in range(len(self.constructed)):
                if self.constructed[s] and self.holder[s] == t:
                    self._empty(s, t)


def run_model(ops: Sequence[Op], slots: int, threads: int) -> Model:
    m = Model(slots, threads)
    for o in ops:
        m.apply(o)
    m.finish()
    return m


@dataclasses.dataclass(frozen=True)
class Predicate:
    name: str
    shape: Shape
    minimum: int
    fires: Callable[[Model], bool]

    def __call__(self, ops: Sequence[Op]) -> bool:
        return self.fires(run_model(ops, DEFAULT_SLOTS, self.shape.threads))


PREDICATES = [
    Predicate("copy-owning-task", Shape("copyable-task", TASK_CAPS | {"copy"}, TASK_FACTORIES, 1, RULES),
              2, lambda m: m.copied_owner),
    Predicate("leak-unfinished", Shape("leaky-task", TASK_CAPS, TASK_FACTORIES, 1, RULES),
              1, lambda m: m.made),
    Predicate("nested-resume", Shape("nested-chain-task", TASK_CAPS,
                                     ({"name": "chain", "min": 0, "max": 20000},), 1, RULES),
              2, lambda m: m.deep_resume),
    Predicate("relaxed-refcount", Shape("relaxed-shared-task", SHARED_CAPS,
                                        ({"name": "value", "min": 0, "max": 100},), 2,
                                        SHARED_RULES),
              4, lambda m: m.race),
]


def _check_minimal_examples() -> None:
    """The known minimal schedules fire, and each with one op fewer does not."""
    from stresscoro.schedule import make, op
    known = {
        "copy-owning-task": [make(0), op("copy", 0, 1)],
        "leak-unfinished": [make(0)],
        "nested-resume": [make(0, 0, DEEP_CHAIN), op("resume", 0)],
        "relaxed-refcount": [make(0), op("copy", 0, 1), op("send", 1, 1), op("touch", 0)],
    }
    for p in PREDICATES:
        ops = known[p.name]
        Schedule(p.shape.target, tuple(ops), slots=DEFAULT_SLOTS, threads=p.shape.threads)
        assert len(ops) == p.minimum and p(ops), p.name
        for i in range(len(ops)):
            assert not p(ops[:i] + ops[i + 1:]), (p.name, i)
    # A relaxed decrement after a send-ordered touch is no race; the DESIGN's 6-op form is.
    rp = PREDICATES[3]
    assert not rp([make(0), op("copy", 0, 1), op("touch", 0), op("send", 1, 1)])
    assert rp([make(0), op("copy", 0, 1), op("send", 1, 1), op("touch", 0), op("drop", 0),
               op("drop", 1, thread=1)])
    assert not PREDICATES[2]([make(0, 0, DEEP_CHAIN - 1), op("resume", 0)])
    assert not PREDICATES[0]([make(0), op("move", 0, 1), op("copy", 0, 2)])


# -- the strategies ----------------------------------------------------------------------

def _legal(target: str, ops: list[Op], threads: int) -> Schedule:
    """Leave out the ops whose slots another thread holds (what Schedule rejects)."""
    holder: dict[int, int] = {}
    live: set[int] = set()
    kept = []
    for o in ops:
        if any(holder.get(s, o.thread) != o.thread for s in o.slots()):
            continue
        kept.append(o)
        n, a, t = o.name, o.args, o.thread
        if n == "make":
            live.add(a[0])
            holder[a[0]] = t
        elif n in ("copy", "move") and a[0] in live and a[0] != a[1]:
            live.add(a[1])
            holder[a[1]] = t
        elif n == "drop":
            live.discard(a[0])
            holder[a[0]] = t
        elif n == "send" and a[0] in live:
            holder[a[0]] = a[1]
    return Schedule(target, tuple(kept), slots=DEFAULT_SLOTS, threads=threads)


def _op_from_fields(name: str, slot1: int, slot2: int, factory: int, arg: int, thread: int,
                    to: int, shape: Shape) -> Op:
    args = []
    for field in OPS[name].fields:
        if field == "factory":
            args.append(factory % len(shape.factories))
        elif field == "arg":
            lo, hi = shape.ranges[args[-1]]
            args.append(lo + arg % (hi - lo + 1))
        elif field == "to":
            args.append(to % shape.threads)
        elif field in ("slot", "src", "a"):
            args.append(slot1 % DEFAULT_SLOTS)
        else:
            args.append(slot2 % DEFAULT_SLOTS)
    return Op(name, tuple(args), thread % shape.threads)


def steered(shape: Shape) -> st.SearchStrategy[Schedule]:
    return schedules(shape.target, shape.capabilities, shape.factories,
                     max_ops=DEFAULT_MAX_OPS, slots=DEFAULT_SLOTS, threads=shape.threads,
                     rules=dict(shape.rules))


def flat(shape: Shape) -> st.SearchStrategy[Schedule]:
    widest = max(hi - lo for lo, hi in shape.ranges)
    one = st.tuples(st.sampled_from(shape.names), st.integers(0, DEFAULT_SLOTS - 1),
                    st.integers(0, DEFAULT_SLOTS - 1), st.integers(0, len(shape.factories) - 1),
                    st.integers(0, widest), st.integers(0, shape.threads - 1),
                    st.integers(0, shape.threads - 1))
    return st.lists(one, min_size=1, max_size=DEFAULT_MAX_OPS).map(
        lambda raw: _legal(shape.target, [_op_from_fields(*r, shape) for r in raw], shape.threads))


MAX_BYTES_PER_OP = 6  # name, thread, slot, slot, and two for an arg (a make's)


class _Reader:
    """Bytes read in order; reads past the end give zeros."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def more(self) -> bool:
        return self.at < len(self.data)

    def byte(self) -> int:
        self.at += 1
        return self.data[self.at - 1] if self.at <= len(self.data) else 0

    def word(self) -> int:
        return self.byte() << 8 | self.byte()


def _decode(data: bytes, shape: Shape) -> Schedule:
    """(d): a name byte, then one byte per field the op has (two for an arg) and, with
    several threads, a thread byte for every op; no steering."""
    r, ops = _Reader(data), []
    while r.more() and len(ops) < DEFAULT_MAX_OPS:
        name = shape.names[r.byte() % len(shape.names)]
        thread = r.byte() % shape.threads if shape.threads > 1 else 0
        args = []
        for field in OPS[name].fields:
            if field == "factory":
                args.append(r.byte() % len(shape.factories))
            elif field == "arg":
                lo, hi = shape.ranges[args[-1]]
                args.append(lo + r.word() % (hi - lo + 1))
            elif field == "to":
                args.append(r.byte() % shape.threads)
            else:
                args.append(r.byte() % DEFAULT_SLOTS)
        ops.append(Op(name, tuple(args), thread))
    return _legal(shape.target, ops, shape.threads)


def bytes_(shape: Shape) -> st.SearchStrategy[Schedule]:
    return st.binary(max_size=MAX_BYTES_PER_OP * DEFAULT_MAX_OPS).map(lambda b: _decode(b, shape))


def _decode_steered(data: bytes, shape: Shape) -> Schedule:
    """(e): the bytes read in (a)'s draw layout (a name, the op's fields, a keep-empty
    byte for an op that reads a slot, a thread byte for a make), then (a)'s model."""
    names = shape.names + (("send",) if "send" in shape.names else ())
    widest = max(hi - lo for lo, hi in shape.ranges)
    r, raw_ops = _Reader(data), []
    while r.more() and len(raw_ops) < DEFAULT_MAX_OPS:
        name = names[r.byte() % len(names)]
        raw = []
        for field in OPS[name].fields:
            if field == "factory":
                raw.append(r.byte() % len(shape.factories))
            elif field == "arg":
                raw.append(r.word() % (widest + 1))
            elif field == "to":
                raw.append(1 + r.byte() % max(1, shape.threads - 1))
            else:
                raw.append(r.byte() % DEFAULT_SLOTS)
        keep = r.byte() % _KEEP_EMPTY_ONE_IN if name in _READS else 0
        thread = r.byte() % shape.threads if shape.threads > 1 and name == "make" else 0
        raw_ops.append((name, tuple(raw), keep, thread))
    return _build(target=shape.target, factories=shape.ranges, slots=DEFAULT_SLOTS,
                  threads=shape.threads, rules=dict(shape.rules), raw_ops=raw_ops)


def bytes_steered(shape: Shape) -> st.SearchStrategy[Schedule]:
    return st.binary(max_size=MAX_BYTES_PER_OP * DEFAULT_MAX_OPS).map(
        lambda b: _decode_steered(b, shape))


class Fired(AssertionError):
    """The modelled bug fired."""


def builder_machine(shape: Shape, check: Callable[[list[Op]], None] | None,
                    on_start: Callable[[], None]) -> type[RuleBasedStateMachine]:
    """(c): a state machine whose rules only append ops; `check(ops)` after each step."""
    slots, threads, ranges = DEFAULT_SLOTS, shape.threads, shape.ranges
    caps = set(shape.names)

    class Builder(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            on_start()
            self.ops: list[Op] = []
            self.live = [False] * slots
            self.holder: list[int | None] = [None] * slots

        def _add(self, op: Op) -> None:
            self.ops.append(op)
            n, a, t = op.name, op.args, op.thread
            if n == "make" or (n in ("copy", "move") and a[0] != a[1]):
                s = a[0] if n == "make" else a[1]
                self.live[s], self.holder[s] = True, t
            elif n == "drop":
                self.live[a[0]] = False
            elif n == "send":
                self.holder[a[0]] = a[1]

        def _live(self) -> list[int]:
            return [s for s in range(slots) if self.live[s]]

        def _any_live(self) -> bool:
            return any(self.live)

        def _with(self, thread: int) -> list[int]:
            """Slots an op on `thread` may name: held by it, or by nobody yet."""
            return [s for s in range(slots) if self.holder[s] in (None, thread)]

        @rule(slot=st.integers(0, slots - 1), factory=st.integers(0, len(ranges) - 1),
              arg=st.integers(0, max(hi - lo for lo, hi in ranges)),
              thread=st.integers(0, threads - 1))
        def make(self, slot, factory, arg, thread):
            lo, hi = ranges[factory]
            t = self.holder[slot] if self.holder[slot] is not None else thread
            self._add(Op("make", (slot, factory, lo + min(arg, hi - lo)), t))

        def _one_slot(self, name: str, data) -> None:
            s = data.draw(st.sampled_from(self._live()))
            self._add(Op(name, (s,), self.holder[s]))

        def _two_slots(self, name: str, data, dst_live: bool) -> None:
            src = data.draw(st.sampled_from(self._live()))
            t = self.holder[src]
            choices = [s for s in self._with(t) if self.live[s] or not dst_live]
            if not choices:
                return
            dst = data.draw(st.sampled_from(choices))
            self._add(Op(name, (src, dst), t))

        if "copy" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def copy(self, data):
                self._two_slots("copy", data, False)

        if "move" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def move(self, data):
                self._two_slots("move", data, False)

        if "resume" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def resume(self, data):
                self._one_slot("resume", data)

        @precondition(_any_live)
        @rule(data=st.data())
        def drop(self, data):
            self._one_slot("drop", data)

        if "copy_assign" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def copy_assign(self, data):
                self._two_slots("copy_assign", data, True)

        if "move_assign" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def move_assign(self, data):
                self._two_slots("move_assign", data, True)

        if "swap" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def swap(self, data):
                self._two_slots("swap", data, True)

        if "touch" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def touch(self, data):
                self._one_slot("touch", data)

        if "await" in caps:
            @precondition(_any_live)
            @rule(data=st.data())
            def await_(self, data):
                self._one_slot("await", data)

        if "send" in caps:
            @precondition(_any_live)
            @rule(data=st.data(), offset=st.integers(1, max(1, threads - 1)))
            def send(self, data, offset):
                s = data.draw(st.sampled_from(self._live()))
                t = self.holder[s]
                self._add(Op("send", (s, (t + offset) % threads), t))

        @invariant()
        def predicate(self):
            if check is not None:
                check(self.ops)

    Builder.__name__ = f"Builder_{shape.target.replace('-', '_')}"
    return Builder


# -- running -----------------------------------------------------------------------------

STRATEGIES: dict[str, tuple[str, Callable[[Shape], st.SearchStrategy[Schedule]] | None]] = {
    "a": ("(a) steered", steered),
    "b": ("(b) flat", flat),
    "c": ("(c) stateful", None),
    "d": ("(d) bytes", bytes_),
    "e": ("(e) bytes+steer", bytes_steered),
}


def search_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=True,
                    print_blob=False, verbosity=Verbosity.quiet,
                    stateful_step_count=DEFAULT_MAX_OPS)


@dataclasses.dataclass
class Result:
    first: int | None  # examples up to and including the first failure
    to_minimal: int | None  # calls until the final example first ran
    calls: int  # every call, shrinking and explaining included
    final: tuple[Op, ...] | None
    seconds: float


def hunt(key: str, pred: Predicate, seed: int, max_examples: int) -> Result:
    calls = 0
    failures: list[tuple[int, tuple[Op, ...]]] = []

    def check(ops: Sequence[Op]) -> None:
        if pred(ops):
            failures.append((calls, tuple(ops)))
            raise Fired(f"{pred.name} fired")

    t0 = time.perf_counter()
    if key == "c":
        def started() -> None:
            nonlocal calls
            calls += 1
        machine = builder_machine(pred.shape, check, started)
        hypothesis_seed(seed)(machine)
        runner = lambda: run_state_machine_as_test(  # noqa: E731
            machine, settings=search_settings(max_examples))
    else:
        def body(schedule: Schedule) -> None:
            nonlocal calls
            calls += 1
            check(schedule.ops)
        runner = hypothesis_seed(seed)(search_settings(max_examples)(
            given(STRATEGIES[key][1](pred.shape))(body)))
    try:
        runner()
    except Fired:
        pass
    except BaseExceptionGroup as e:  # report_multiple_bugs with one kind never groups, but
        if e.subgroup(lambda x: not isinstance(x, (Fired, BaseExceptionGroup))) is not None:
            raise
    elapsed = time.perf_counter() - t0
    if not failures:
        return Result(None, None, calls, None, elapsed)
    final = failures[-1][1]
    to_min = next(i for i, ops in failures if ops == final)
    return Result(failures[0][0], to_min, calls, final, elapsed)


def generation_rate(key: str, pred: Predicate, examples: int) -> float:
    """Examples/s of the strategy alone: no-op body (no predicate, no model)."""
    count = 0
    if key == "c":
        def started() -> None:
            nonlocal count
            count += 1
        machine = builder_machine(pred.shape, None, started)
        hypothesis_seed(12345)(machine)
        t0 = time.perf_counter()
        run_state_machine_as_test(machine, settings=search_settings(examples))
    else:
        def body(schedule: Schedule) -> None:
            nonlocal count
            count += 1
        test = hypothesis_seed(12345)(search_settings(examples)(
            given(STRATEGIES[key][1](pred.shape))(body)))
        t0 = time.perf_counter()
        test()
    return count / (time.perf_counter() - t0)


def _span(values: list[int]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    med_s = f"{med:.0f}" if med == int(med) else f"{med:.1f}"
    return f"{med_s} [{min(values)}-{max(values)}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--max-examples", type=int, default=1000,
                    help="search budget per run (the dev profile's is 300)")
    ap.add_argument("--rate-examples", type=int, default=1000)
    ap.add_argument("--only", default="a,b,c,d,e", help="strategies, by letter")
    ap.add_argument("--predicates", default=",".join(p.name for p in PREDICATES))
    args = ap.parse_args()
    _check_minimal_examples()
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    wanted = set(args.predicates.split(","))
    preds = [p for p in PREDICATES if p.name in wanted]
    seeds = list(range(args.seeds))

    print(f"stresscoro strategies bench: {time.strftime('%Y-%m-%d %H:%M')}; {len(seeds)} seeds, "
          f"max_examples {args.max_examples}, max ops {DEFAULT_MAX_OPS}, slots {DEFAULT_SLOTS}; "
          "no workers (modelled bugs)")
    print("columns: found = seeds that found it; first = examples to the first failure; "
          "to-min = calls until the final example first ran; calls = all calls (shrink and "
          "explain phases included); final ops per seed (min = known minimum); gen/s = bare "
          "generation rate. Cells: median [min-max] over the seeds that found it.")
    finals: dict[tuple[str, str], tuple[Op, ...] | None] = {}
    summary: dict[str, dict[str, list]] = {k: {"exact": [], "to_min": [], "rate": [],
                                               "found": []} for k in keys}
    t_start = time.perf_counter()
    for pred in preds:
        print()
        print(f"{pred.name}  (target {pred.shape.target}, {pred.shape.threads} thread(s), "
              f"known minimum {pred.minimum} ops)")
        print(f"  {'strategy':<17}{'found':>6}{'first':>16}{'to-min':>18}{'calls':>18}"
              f"  {'final ops':<15}{'gen/s':>7}{'s/run':>7}")
        for key in keys:
            results = [hunt(key, pred, s, args.max_examples) for s in seeds]
            rate = generation_rate(key, pred, args.rate_examples)
            got = [r for r in results if r.final is not None]
            finals[(key, pred.name)] = results[0].final
            lengths = " ".join(str(len(r.final)) if r.final is not None else "-" for r in results)
            print(f"  {STRATEGIES[key][0]:<17}{len(got)}/{len(results):<4}"
                  f"{_span([r.first for r in got]):>16}{_span([r.to_minimal for r in got]):>18}"
                  f"{_span([r.calls for r in got]):>18}  {lengths:<15}{rate:>7.0f}"
                  f"{statistics.mean(r.seconds for r in results):>7.2f}")
            summary[key]["found"].append(len(got) / len(results))
            summary[key]["exact"] += [len(r.final) == pred.minimum for r in got] + \
                [False] * (len(results) - len(got))
            summary[key]["to_min"] += [r.to_minimal for r in got]
            summary[key]["rate"].append(rate)

    print()
    print("final examples, seed 0:")
    for pred in preds:
        for key in keys:
            final = finals.get((key, pred.name))
            text = "not found" if final is None else "; ".join(o.render() for o in final)
            print(f"  {pred.name:<18}{STRATEGIES[key][0]:<17}{text}")

    print()
    print(f"overall ({len(preds)} predicates x {len(seeds)} seeds):")
    print(f"  {'strategy':<17}{'found':>7}{'minimal':>9}{'to-min median':>15}{'gen/s mean':>12}")
    for key in keys:
        s = summary[key]
        print(f"  {STRATEGIES[key][0]:<17}{statistics.mean(s['found']) * 100:>6.0f}%"
              f"{statistics.mean(s['exact']) * 100:>8.0f}%"
              f"{statistics.median(s['to_min']) if s['to_min'] else float('nan'):>15.0f}"
              f"{statistics.mean(s['rate']):>12.0f}")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
