"""Turn a raw worker outcome into findings: sanitizer reports, crashes, broken invariants."""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Sequence

from .schedule import Schedule
from .worker import RawOutcome

# Mirrors native/include/stresscoro/detail/event_log.hpp.
EV_ALLOC, EV_FREE, EV_DOUBLE_FREE, EV_STATE, EV_RESUME, EV_PROBE = 1, 2, 3, 4, 5, 6
EV_SKIP, EV_END, EV_LEAK, EV_EXCEPTION, EV_OP_DONE, EV_THREAD = 7, 8, 9, 10, 11, 12
EV_LOST, EV_PREEMPT, EV_PREEMPT_STACK, EV_POINTS = 13, 14, 15, 16
# Mirrors native/include/stresscoro/preempt.hpp's sync kinds.
SYNC_KINDS = {1: "atomic load", 2: "atomic store", 3: "atomic exchange",
              4: "compare-exchange", 5: "atomic add", 6: "atomic sub",
              7: "atomic read-modify-write", 8: "fence", 9: "mutex lock", 10: "mutex unlock",
              11: "atomic flag"}
FRAME_SUSPENDED, FRAME_DONE, FRAME_FREED = 0, 1, 2
STACK_FRAMES = 10


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing that went wrong, in DESIGN.md's vocabulary.

    `op_index` is the op in flight (len(schedule) means the end-of-schedule drops;
    None when unknown). `location` is the first frame outside the runtime, the
    standard library and the driver: with `kind` it tells distinct findings apart.
    """

    kind: str
    op_index: int | None
    summary: str
    location: str = ""
    stacks: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    source: str = "driver"  # asan, tsan, ubsan, lsan, driver, supervisor
    thread: int | None = None
    related_ops: tuple[int, ...] = ()
    preemptions: tuple["PreemptionSeen", ...] = ()  # those that took effect in the run

    @property
    def signature(self) -> tuple[str, str]:
        return (self.kind, self.location)

    def where(self, schedule: Schedule, factory_names: Sequence[str] = ()) -> str:
        if self.op_index is None:
            return "at an unknown op"
        text = self._op_text(self.op_index, schedule, factory_names)
        for other in self.related_ops:
            other_text = self._op_text(other, schedule, factory_names)
            text += f", racing with {other_text.removeprefix('at ').removeprefix('in ')}"
        return text

    @staticmethod
    def _op_text(index: int, schedule: Schedule, factory_names: Sequence[str]) -> str:
        if index >= len(schedule.ops):
            return "in the end-of-schedule drops"
        return f"at op {index} ({schedule.render(factory_names)[index]})"

    def preemption_lines(self, schedule: Schedule, factory_names: Sequence[str] = ()) -> list[str]:
        """One sentence per preemption that took effect, in the order they happened."""
        return [p.describe(schedule, factory_names) for p in self.preemptions]

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "op_index": self.op_index,
            "summary": self.summary,
            "location": self.location,
            "source": self.source,
            "related_ops": list(self.related_ops),
            "stacks": {k: list(v) for k, v in self.stacks.items()},
        }


@dataclasses.dataclass(frozen=True)
class PreemptionSeen:
    """A preemption that took effect: op `op` on `thread` gave the CPU to thread `to`
    right after its `after`-th sync point (a `kind`, at `at`: the first frame of the
    code under test, "func file:line", when it could be named), and ops `ran` ran
    before it went on."""

    op: int
    thread: int
    after: int
    to: int
    kind: str
    at: str = ""
    ran: tuple[int, ...] = ()

    def describe(self, schedule: Schedule, factory_names: Sequence[str] = ()) -> str:
        rendered = schedule.render(factory_names)
        name = rendered[self.op] if self.op < len(rendered) else f"op {self.op}"
        where = f" at {self.at}" if self.at else ""
        ran = ", ".join(rendered[i] if i < len(rendered) else "its end-of-schedule drops"
                        for i in self.ran)
        if not ran:
            ran = "its end-of-schedule drops" if self.to else "nothing"
        return (f"thread {self.thread} preempted in op {self.op} ({name}) after {self.kind} "
                f"#{self.after}{where}; thread {self.to} ran {ran}")


def sync_points(raw: RawOutcome) -> dict[int, int]:
    """The sync points each op passed (ops that passed none are left out); counted in
    schedules of two or more threads."""
    return {ev[1]: ev[3] for ev in raw.events if ev[0] == EV_POINTS}


def preemptions_seen(raw: RawOutcome, schedule: Schedule, locate=None) -> tuple[PreemptionSeen, ...]:
    """The preemptions of a run, from its ev_preempt events. `locate(offset)` gives the
    inline chain ("func file:line", innermost first) at a code offset of the target's
    binary; the first frame outside the C++ runtime and stresscoro names the place."""
    out: list[PreemptionSeen] = []
    events = raw.events
    n = len(schedule.ops)
    for k, ev in enumerate(events):
        if ev[0] != EV_PREEMPT:
            continue
        _, op_i, thread, after, to, kind, pc = ev
        offsets = [pc]
        if k + 1 < len(events) and events[k + 1][0] == EV_PREEMPT_STACK:
            offsets += [o for o in events[k + 1][3:] if o]
        at = ""
        if locate is not None:
            frames: list[str] = []
            for depth, off in enumerate(offsets):
                if off:
                    frames.extend(locate(off - 1))  # return addresses: the call before
            at = next((_shorten(f) for f in frames if is_library_frame(f)), "")
        # The ops that finished between this preemption and the preempted op going on
        # (its next preemption, or its own end).
        ran: list[int] = []
        for later in events[k + 1:]:
            if later[1] == op_i and later[0] in (EV_OP_DONE, EV_PREEMPT):
                break
            if later[0] == EV_OP_DONE and later[1] != op_i and later[1] < n and later[1] not in ran:
                ran.append(later[1])
            if later[0] == EV_END and later[2] == to and n not in ran:
                ran.append(n)
        out.append(PreemptionSeen(op_i, thread, after, to, SYNC_KINDS.get(kind, "sync point"),
                                  at, tuple(ran)))
    return tuple(out)


@dataclasses.dataclass
class Outcome:
    """The verdict on one run: no findings means ok. The first finding is the primary
    one: a sanitizer report or crash when there is one, else the earliest invariant."""

    findings: list[Finding]
    raw: RawOutcome

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def primary(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def describe(self, schedule: Schedule, factory_names: list[str] = ()) -> str:
        """A readable account: the findings, then the schedule that produced them."""
        if not self.findings:
            return "no finding"
        lines = []
        for i, f in enumerate(self.findings):
            lead = "stresscoro finding:" if i == 0 else "also:"
            lines.append(f"{lead} {f.kind} {f.where(schedule, factory_names)}")
            lines.append(f"    {f.summary}")
            if f.location:
                lines.append(f"    at {f.location}")
        lines.append(f"schedule ({len(schedule.ops)} ops, then the end-of-schedule drops):")
        lines += [f"    {i:>3}  {text}" for i, text in enumerate(schedule.render(factory_names))]
        lines += [f"    preempted: {text}" for text in self.findings[0].preemption_lines(schedule, factory_names)]
        return "\n".join(lines)


# -- sanitizer reports ------------------------------------------------------------

_ASAN_ERROR = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer): (.*)")
_TSAN_WARNING = re.compile(r"WARNING: ThreadSanitizer: (.*?)(?: \(pid=\d+\))?$")
_UBSAN_ERROR = re.compile(r"^(\S+:\d+:\d+): runtime error: (.*)$")
# ASan: "#3 0x7f.. in func file:line"; TSan: "#3 func file:line (module+0x..)";
# unsymbolized: "#3 0x7f.. (module+0x..)".
_BUILD_ID = re.compile(r" \(BuildId: [0-9a-f]+\)")
_FRAME = re.compile(r"^\s*#\d+ (?:0x[0-9a-f]+ (?:in )?)?(.*?)(?: \(([^()]*\+0x[0-9a-f]+)\))?$")
_SUMMARY = re.compile(r"^SUMMARY: (?:AddressSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer): (.*)$")
_ASAN_SIGNALS = {"SEGV": "SIGSEGV", "BUS": "SIGBUS", "ABRT": "SIGABRT", "FPE": "SIGFPE",
                 "ILL": "SIGILL", "TRAP": "SIGTRAP"}
_SKIP_FUNCS = ("std::", "__", "operator new", "operator delete", "stresscoro::driver",
               "stresscoro::detail", "start_thread", "clone", "free", "malloc", "pthread_")
_SKIP_FILES = ("libsanitizer", "/include/c++/", "nptl/", "sysdeps/", "libasan.so", "libtsan.so",
               "libubsan.so", "libc.so", "libstdc++.so", "libclang_rt")
# Kinds whose top frame is wherever the damage happened to surface, not a place in
# the code: one location for all of them.
_PLACELESS = ("stack-overflow",)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _asan_kind(text: str) -> str:
    if text.startswith("attempting double-free"):
        return "double-free"
    if text.startswith("attempting free on address which was not malloc"):
        return "bad-free"
    if text.startswith("detected memory leaks"):
        return "leak"
    m = re.match(r"(SEGV|BUS|ABRT|FPE|ILL|TRAP) on unknown address", text)
    if m:
        return f"crash:{_ASAN_SIGNALS[m.group(1)]}"
    return _slug(text.split(" on ")[0].split(" (")[0].split(":")[0])


def _frames(lines: list[str], start: int) -> tuple[list[str], int]:
    frames = []
    i = start
    while i < len(lines) and not lines[i].strip().startswith("#"):
        if lines[i].strip() and i > start + 1:
            return frames, i
        i += 1
    number = -1
    while i < len(lines):
        if not lines[i].strip().startswith("#"):
            # A line of another thread's output inside a stack: the stack goes on if a
            # frame numbered next follows within a few lines.
            ahead = next((j for j in range(i + 1, min(i + 4, len(lines)))
                          if lines[j].strip().startswith(f"#{number + 1} ")), None)
            if ahead is None:
                break
            i = ahead
        m = _FRAME.match(_BUILD_ID.sub("", lines[i]))
        if m:
            # TSan writes "<null> <null> (module+0x..)" for a frame it did not symbolize.
            func = "" if (m.group(1) or "").startswith("<null>") else m.group(1)
            frames.append((func or m.group(2) or "").strip())
        number = int(_FRAME_NUMBER.match(lines[i]).group(1)) if _FRAME_NUMBER.match(lines[i]) else number + 1
        i += 1
    return frames, i


_FRAME_NUMBER = re.compile(r"^\s*#(\d+)")


# TSan names a module by its file name only, ASan by its path.
_MODULE_OFFSET = re.compile(r"^(\S+?)\+0x([0-9a-f]+)$")


def _expand(frames: list[str], symbolize) -> list[str]:
    """Replace unsymbolized module+offset frames by their inline chains."""
    out = []
    for depth, f in enumerate(frames):
        m = _MODULE_OFFSET.match(f)
        if m is None or symbolize is None or any(s in f for s in _SKIP_FILES):
            out.append(f)
            continue
        # Frames below the top hold return addresses: look up the call instruction.
        offset = int(m.group(2), 16) - (1 if depth else 0)
        out.extend(symbolize(m.group(1), offset) or [f])
    return out


def is_library_frame(frame: str) -> bool:
    """Whether a stack frame ("func file:line") lies outside the sanitizer runtime, the
    C and C++ runtimes and the driver: in the code under test."""
    func, _, where = frame.rpartition(" ")
    func = func or frame
    return not (func.startswith(_SKIP_FUNCS) or any(s in where for s in _SKIP_FILES))


def _user_frame(frames: list[str]) -> str:
    for f in frames:
        if is_library_frame(f):
            return _shorten(f)
    return _shorten(frames[0]) if frames else ""


def _shorten(frame: str) -> str:
    """Drop directories from the file part of a frame, keep file:line."""
    func, sep, where = frame.rpartition(" ")
    if not sep:
        return frame
    return f"{func} {where.rsplit('/', 1)[-1]}"


_STACK_HEADERS = [
    (re.compile(r"^freed by thread"), "free"),
    (re.compile(r"^previously allocated by thread"), "alloc"),
    (re.compile(r"^\s*Previous (read|write|atomic read|atomic write)"), "previous"),
    (re.compile(r"^\s*Location is heap block"), "alloc"),
    (re.compile(r"^\s*Mutex"), "mutex"),
    (re.compile(r"^\s*Thread T\d+"), "thread"),
]


def parse_sanitizer_report(text: str, symbolize=None) -> Finding | None:
    """The first sanitizer report in `text`, or None. `symbolize(module, offset)`, when
    given, names the frames of an unsymbolized report (see stresscoro.symbolize)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _ASAN_ERROR.search(line)
        if m:
            source = "lsan" if m.group(1) == "LeakSanitizer" else "asan"
            return _with_stacks(_asan_kind(m.group(2)), source, lines, i, symbolize)
        m = _TSAN_WARNING.search(line)
        if m:
            kind = _slug(m.group(1))
            kind = "data-race" if kind == "data-race" else kind
            return _with_stacks(kind, "tsan", lines, i, symbolize)
        m = _UBSAN_ERROR.search(line)
        if m:
            frames, _ = _frames(lines, i + 1)
            summary = f"runtime error: {m.group(2)}"
            return Finding(kind="undefined-behavior", op_index=None, summary=summary,
                           location=_user_frame(frames) or m.group(1).rsplit("/", 1)[-1],
                           stacks={"access": tuple(frames[:STACK_FRAMES])}, source="ubsan")
    return None


def _with_stacks(kind: str, source: str, lines: list[str], at: int, symbolize=None) -> Finding:
    stacks: dict[str, tuple[str, ...]] = {}
    primary, i = _frames(lines, at + 1)
    stacks["access"] = tuple(_expand(primary[:STACK_FRAMES], symbolize)[:2 * STACK_FRAMES])
    summary = ""
    while i < len(lines):
        line = lines[i]
        sm = _SUMMARY.match(line.strip())
        if sm:
            summary = line.strip()
            break
        name = next((n for rx, n in _STACK_HEADERS if rx.search(line)), None)
        if name and name not in stacks:
            frames, i = _frames(lines, i)
            if frames:
                stacks[name] = tuple(_expand(frames[:STACK_FRAMES], symbolize)[:2 * STACK_FRAMES])
            continue
        i += 1
    if not summary:
        summary = lines[at].strip()
    location = "" if kind in _PLACELESS else _user_frame(_expand(primary, symbolize))
    return Finding(kind=kind, op_index=None, summary=summary, location=location,
                   stacks=stacks, source=source)


# -- the oracle ------------------------------------------------------------------


def classify(raw: RawOutcome, schedule: Schedule, symbolize=None, locate=None) -> Outcome:
    """All findings of one run, primary first. `symbolize` as for parse_sanitizer_report;
    `locate` as for preemptions_seen (each finding carries the run's preemptions)."""
    findings: list[Finding] = []
    n = len(schedule.ops)
    if raw.status == "harness-error":
        raise ValueError(f"the driver rejected the schedule: {raw.detail}")
    if raw.status in ("crashed", "hang", "memory"):
        findings.append(_process_finding(raw, symbolize))
    findings.extend(_invariants(raw, schedule))
    if raw.status != "ok" and findings:
        findings[0] = dataclasses.replace(
            findings[0], op_index=raw.op_in_flight if raw.op_in_flight >= 0 else None,
            thread=raw.thread_in_flight)
        if findings[0].op_index is not None and findings[0].op_index > n:
            findings[0] = dataclasses.replace(findings[0], op_index=None)
        if findings[0].source == "tsan" and findings[0].op_index is not None:
            previous = _previous_access_op(raw, schedule, findings[0].op_index)
            if previous is not None:
                findings[0] = dataclasses.replace(findings[0], related_ops=(previous,))
    if findings and any(ev[0] == EV_PREEMPT for ev in raw.events):
        seen = preemptions_seen(raw, schedule, locate)
        findings = [dataclasses.replace(f, preemptions=seen) for f in findings]
    return Outcome(findings=findings, raw=raw)


_TSAN_PREVIOUS = re.compile(r"^\s*Previous .* by (?:thread T(\d+)|(main) thread)")
_TSAN_THREAD = re.compile(r"^\s*Thread T(\d+) \(tid=(\d+)")
_DRIVER_OP = re.compile(r"::(?:do_([a-z_]+)|(drop_remaining))\(")


def _previous_access_op(raw: RawOutcome, schedule: Schedule, current: int) -> int | None:
    """The op that made the other access of a TSan race.

    TSan names the thread (T<n>, with its OS tid further down), the driver logged each
    schedule thread's tid, and the driver runs every op in a function named after it
    (do_touch, ...): the previous access belongs to the latest op of that name on that
    thread before the racing one. len(ops) stands for that thread's end-of-schedule drops."""
    lines = raw.stderr.splitlines()
    start = next((i for i, l in enumerate(lines) if _TSAN_PREVIOUS.match(l)), None)
    if start is None:
        return None
    tsan_thread = _TSAN_PREVIOUS.match(lines[start]).group(1)
    name = None
    for line in lines[start + 1:]:
        if not line.strip().startswith("#"):
            break
        m = _DRIVER_OP.search(line)
        if m:
            name = m.group(1) or "end"
            break
    tids = {int(m.group(1)): int(m.group(2)) for m in map(_TSAN_THREAD.match, lines) if m}
    by_tid = {ev[3]: ev[2] for ev in raw.events if ev[0] == EV_THREAD}
    thread = by_tid.get(tids.get(int(tsan_thread))) if tsan_thread else None
    if thread is None or name is None:
        return None
    n = len(schedule.ops)
    if name == "end":
        return n
    for i in range(min(current, n) - 1, -1, -1):
        o = schedule.ops[i]
        if o.thread == thread and o.name == name:
            return i
    return None


def _process_finding(raw: RawOutcome, symbolize=None) -> Finding:
    if raw.status == "hang":
        return Finding(kind="hang", op_index=None, summary=raw.detail, source="supervisor")
    if raw.status == "memory":
        return Finding(kind="out-of-memory", op_index=None, summary=raw.detail, source="supervisor")
    report = parse_sanitizer_report(raw.stderr, symbolize)
    if report is not None:
        return report
    if raw.signal:
        what = f"crash:{raw.signal}"
        summary = f"worker killed by {raw.signal} with no sanitizer report"
    else:
        what = f"crash:exit-{raw.exit_code}"
        summary = f"worker exited with status {raw.exit_code} in the middle of a schedule"
    tail = raw.stderr.strip().splitlines()[-1:] if raw.stderr.strip() else []
    if tail:
        summary += f"; last output: {tail[0][:200]}"
    return Finding(kind=what, op_index=None, summary=summary, source="supervisor")


def _invariants(raw: RawOutcome, schedule: Schedule) -> list[Finding]:
    """Lifetime invariants checked from the event log, in event order."""
    found: list[Finding] = []
    states = schedule.simulate()
    n = len(schedule.ops)
    last_addr: dict[int, int] = {}
    batch: dict[int, list[tuple]] = defaultdict(list)
    # Ops that overlapped another (a preemption inside them, or run inside one) see
    # counts in the middle of another op's update: their use counts are not checked.
    overlapped: set[int] = set()
    open_preempted: list[int] = []
    for ev in raw.events:
        if ev[0] == EV_PREEMPT:
            overlapped.add(ev[1])
            open_preempted.append(ev[1])
        elif ev[0] == EV_OP_DONE:
            if ev[1] in open_preempted:
                open_preempted.remove(ev[1])
            elif open_preempted:
                overlapped.add(ev[1])
    for ev in raw.events:
        kind, op_i, thread, a, b, c, d = ev
        if kind == EV_DOUBLE_FREE:
            found.append(Finding("invariant:freed-twice", op_i,
                                 f"block {a:#x} ({c} bytes) freed a second time", source="driver"))
        elif kind == EV_RESUME and c == FRAME_FREED:
            found.append(Finding("invariant:resume-freed-frame", op_i,
                                 f"slot {a} resumed frame {b:#x} after it was freed"))
        elif kind == EV_STATE:
            batch[op_i].append(ev)
            last_addr[a] = b
        elif kind == EV_OP_DONE and op_i < n and batch.get(op_i):
            found.extend(_check_owners(op_i, batch.pop(op_i), states[op_i], last_addr,
                                       counts=op_i not in overlapped))
        elif kind == EV_PROBE:
            if c > 0:
                found.append(Finding("invariant:probe-destroyed", d if d >= 0 else None,
                                     f"the library destroyed continuation probe {a}, a handle it "
                                     "does not own"))
            if b > 1:
                found.append(Finding("invariant:continuation-resumed-twice", d if d >= 0 else None,
                                     f"continuation probe {a} was resumed {b} times"))
        elif kind == EV_LOST:
            found.append(Finding("invariant:continuation-lost", op_i,
                                 f"the object probe {a} awaited finished (frame {b:#x}), but the "
                                 "library never resumed the probe"))
        elif kind == EV_LEAK:
            maker = _maker(schedule, c) if 0 <= c < n else "the end-of-schedule drops"
            found.append(Finding("leak", c, f"{b} bytes allocated at op {c} never freed "
                                 f"(block {a:#x})", location=f"allocated by {maker}"))
    return found


def _maker(schedule: Schedule, index: int) -> str:
    """The op that allocated a leaked block, by name: a combinator or custom op by its
    own name, so leaks after different ops stay distinct findings."""
    o = schedule.ops[index]
    sig = schedule.signature(o)
    return f"{o.name}({sig.name})" if sig is not None else o.name


def _check_owners(op_i: int, events: list[tuple], state: dict, last_addr: dict[int, int],
                  counts: bool = True) -> list[Finding]:
    found = []
    owners: dict[int, int] = defaultdict(int)
    for slot, st in state.items():
        addr = last_addr.get(slot, 0)
        if st.live and addr:
            owners[addr] += 1
    for _, _, _, slot, addr, count, frame in events:
        if addr and frame == FRAME_FREED:
            found.append(Finding("invariant:owner-of-freed-frame", op_i,
                                 f"slot {slot} still owns frame {addr:#x}, which was freed"))
        elif counts and count >= 0 and addr and count != owners[addr]:
            found.append(Finding("invariant:refcount-mismatch", op_i,
                                 f"slot {slot}: use count {count}, but {owners[addr]} live "
                                 f"owners share frame {addr:#x}"))
    return found
