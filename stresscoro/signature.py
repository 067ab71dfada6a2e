"""Crash signatures: a sanitizer report's error kind and top library frames, and how alike two are."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re

from .oracle import Finding, parse_sanitizer_report

# The crash state of large fuzzing services: the first three frames that remain once
# runtime, standard library, coroutine trampolines and stresscoro's own frames are gone.
FRAMES = 3
# Two stacks whose frames differ only by this much, frame for frame, are the same stack.
# Normalisation already removes what builds change (template arguments, parameters, ABI
# tags, clone suffixes); what is left is a real difference. "task::resume" against
# "task::reset" scores 0.87, so the 0.8 that tolerates noisier names would call two
# different bugs one.
CLOSE_RATIO = 0.95
# Kinds that one bug shows in turn: a second destroy of a coroutine frame reads the freed
# frame first (heap-use-after-free) or reaches free() (double-free), depending on the build.
KIND_FAMILIES = ({"heap-use-after-free", "double-free"},)
# Which stack names the bug, per kind: a use after free is the fault of whoever freed the
# memory; the free stack is recorded at a real call (operator delete), so inlining at
# another optimisation level does not move it, while the faulting access may be
# attributed to whatever inline chain the optimiser merged it into.
_EVIDENCE = {"heap-use-after-free": ("free", "access", "alloc"),
             "double-free": ("free", "access", "alloc"),
             "leak": ("alloc",)}
_DEFAULT_EVIDENCE = ("access", "free", "alloc")
_RACE = "data-race"

_MAX_STREAMS = 8
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HEADER = re.compile(r"==\d+==\s*ERROR: (?:AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer:"
                     r"|\S+:\d+:\d+: runtime error:")
_FIRST_FRAME = re.compile(r"^(.*?)\s*#0 ")
_ANY_HEADER = re.compile(r"(ERROR: (?:AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|"
                         r"runtime error:)")
_SUMMARY = re.compile(r"SUMMARY: (?:AddressSanitizer|ThreadSanitizer|LeakSanitizer|"
                      r"UndefinedBehaviorSanitizer)")

# Frames that say nothing about the library under test.
_DROP_FUNCS = ("std::", "__", "operator new", "operator delete", "pthread_", "stresscoro::driver",
               "stresscoro::detail", "stresscoro::replay", "stresscoro::await_from",
               "stresscoro::init_probe", "stresscoro::probe", "stresscoro_run", "stresscoro_target",
               "_cffi_", "run_on_stack", "emplace_from")
_DROP_EXACT = {"_FUN", "main", "_start", "operator()", "malloc", "calloc", "realloc", "free",
               "start_thread", "clone", "clone3"}
_DROP_FILES = ("libsanitizer", "/include/c++/", "nptl/", "sysdeps/", "libasan.so", "libtsan.so",
               "libubsan.so", "liblsan.so", "libc.so", "libstdc++.so", "libc++", "libclang_rt",
               "libpython", "Objects/", "Python/", "Modules/", "/stresscoro/driver.hpp",
               "/stresscoro/replay.hpp", "/stresscoro/probe.hpp", "/stresscoro/shim.inc",
               "/stresscoro/adapter.hpp", "targets/adapters/")
# GCC's split coroutine functions and Clang's: bodies and destroy paths, not library code.
_CORO_CLONE = re.compile(r"\[clone \.(?:actor|destroy|resume)\]|\((?:\.resume|\.destroy|\.cleanup)\)"
                         r"|\.(?:resume|destroy|cleanup|actor)$")
_BARE = re.compile(r"^[A-Za-z_]\w*(?:<.*>)?$")
_ADAPTER = re.compile(r"(?:^|::)\w*_adapter(?:<|::)")
_CLONE_SUFFIX = re.compile(r"\s*\[clone [^\]]*\]|\.(?:isra|constprop|part|cold|lto_priv)(?:\.\d+)?")
_BRACKET_OPERATORS = ("operator()", "operator<<=", "operator>>=", "operator<=>", "operator<<",
                      "operator>>", "operator<=", "operator>=", "operator->", "operator<",
                      "operator>", "operator[]")
_ABI_TAG = re.compile(r"\[abi:\w+\]")
_MODULE_OFFSET = re.compile(r"^\S+\+0x[0-9a-f]+$")
_WHERE = re.compile(r"^(.*?)\s+(\S+:\d+(?::\d+)?)$")
_LAST_NAME = re.compile(r"((?:[\w~${}]+::)*(?:operator\s*[^\s\w:]+|operator \w+|[\w~${}]+))$")


class ReportError(ValueError):
    """A report that cannot be read as a sanitizer report; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """One library frame: the normalised function name (compared) and where (shown)."""

    name: str
    where: str = ""

    def same_function(self, other: "Frame") -> bool:
        """Equal names, or one is the other with namespaces left out (symbolizers
        differ on whether they print the qualified name)."""
        a, b = self.name, other.name
        return a == b or a.endswith("::" + b) or b.endswith("::" + a)


@dataclasses.dataclass(frozen=True)
class Signature:
    """A crash's identity, independent of addresses, paths, optimisation level and build.

    `stacks` maps "access", "free", "alloc" (ASan), "access" and "previous" (the two
    threads of a TSan race) to the first FRAMES library frames of that stack."""

    kind: str
    stacks: dict[str, tuple[Frame, ...]]
    source: str = ""
    summary: str = ""
    notes: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """Kind plus library function names, stable across builds: no addresses, files or
        lines. Two findings of one bug in two runs give the same string."""
        parts = [self.kind]
        for name in sorted(self.stacks):
            if self.stacks[name]:
                parts.append(f"{name}=" + ">".join(f.name for f in self.stacks[name]))
        return "|".join(parts)

    @property
    def crash_state(self) -> tuple[Frame, ...]:
        """The frames of the stack that names the bug for this kind (see _EVIDENCE)."""
        for name in _evidence(self.kind):
            if self.stacks.get(name):
                return self.stacks[name]
        return ()

    def to_json(self) -> dict:
        return {"kind": self.kind, "source": self.source, "summary": self.summary,
                "fingerprint": self.fingerprint(),
                "stacks": {k: [dataclasses.asdict(f) for f in v] for k, v in self.stacks.items()},
                "notes": list(self.notes)}

    def describe(self) -> list[str]:
        lines = [f"kind: {self.kind} ({self.source})" if self.source else f"kind: {self.kind}"]
        for name, frames in self.stacks.items():
            lines.append(f"{name} stack:" + ("" if frames else " (no library frames)"))
            lines += [f"    {i}  {f.name}" + (f"  {f.where}" if f.where else "")
                      for i, f in enumerate(frames)]
        lines.append(f"fingerprint: {self.fingerprint()}")
        lines += [f"note: {n}" for n in self.notes]
        return lines


# -- reading a report -----------------------------------------------------------------


def clean_report(text: str) -> str:
    """The report's own lines: colour codes removed, a per-line log prefix removed, and
    only the lines of the log stream that carries the first report.

    A prefix is whatever precedes the first stack frame's `#0` on its line; it is
    generalised by letting every run of digits vary (timestamps, pids, thread ids).
    Digit fields that go back and forth between a few values (thread or process ids,
    not timestamps) tell streams apart: lines whose fields differ from the header
    line's belong to another thread or process and are dropped."""
    lines = [_ANSI.sub("", line) for line in text.replace("\r\n", "\n").split("\n")]
    header = next((i for i, line in enumerate(lines) if _HEADER.search(line)), None)
    if header is None:
        return "\n".join(lines)
    first = next((m for line in lines[header:] if (m := _FIRST_FRAME.match(line))), None)
    prefix = first.group(1) if first else ""
    if not prefix.strip():
        return "\n".join(lines)
    pattern = re.compile("^" + "".join(r"(\d+)" if part.isdigit() else re.escape(part)
                                       for part in re.split(r"(\d+)", prefix)) + " ?")
    fields = [m.groups() if (m := pattern.match(line)) else None for line in lines]
    keys = _stream_keys([f for f in fields if f is not None])
    own = fields[header]
    out = []
    for line, f in zip(lines, fields):
        if f is None:
            out.append(line)
        elif own is None or all(f[k] == own[k] for k in keys):
            out.append(pattern.sub("", line, count=1))
    return "\n".join(out)


def _stream_keys(rows: list[tuple[str, ...]]) -> list[int]:
    """Digit fields that come back to a value after leaving it, and take few values:
    ids of interleaved threads or processes. Timestamp fields never come back within a
    report (their seconds and fractions only move on), or take many values."""
    keys = []
    for k in range(len(rows[0]) if rows else 0):
        values = [r[k] for r in rows]
        runs = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
        if len(set(runs)) < len(runs) and len(set(values)) <= _MAX_STREAMS:
            keys.append(k)
    return keys


def parse(text: str, symbolize=None) -> Signature:
    """The signature of the first sanitizer report in `text`; ReportError if there is
    none, or if it stops before its stacks. `symbolize` as for oracle.classify."""
    if not text.strip():
        raise ReportError("the report is empty: pass the file that holds the sanitizer's output")
    cleaned = clean_report(text)
    lines = cleaned.splitlines()
    header = next((i for i, line in enumerate(lines) if _ANY_HEADER.search(line)), None)
    if header is None:
        raise ReportError(
            "no sanitizer report found: expected a line with 'ERROR: AddressSanitizer:', "
            "'ERROR: LeakSanitizer:', 'WARNING: ThreadSanitizer:' or 'runtime error:' "
            f"(read {len(lines)} line(s)); pass the sanitizer's own output, symbolized if you can")
    finding = parse_sanitizer_report(cleaned, symbolize)
    where = f"the report's header on line {header + 1} ({lines[header].strip()[:80]!r})"
    if finding is None or not finding.kind:
        raise ReportError(f"could not read the error kind from {where}")
    notes = ()
    if finding.source == "ubsan" and not any(finding.stacks.values()):
        notes = ("UBSan printed no stack: rerun with UBSAN_OPTIONS=print_stacktrace=1 for one; "
                 "only the kind can be compared",)
    elif not any(finding.stacks.values()):
        raise ReportError(f"{where} is followed by no stack frame ('#0 ...'): the report is "
                          "truncated or not a sanitizer report; pass the whole report")
    if finding.source in ("asan", "lsan", "tsan") and not any(
            _SUMMARY.search(line) for line in lines[header:]):
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        raise ReportError(f"{where} has no SUMMARY line after it: the report is truncated "
                          f"(its last line is {last[:80]!r}); pass the whole report")
    signature = from_finding(finding)
    return dataclasses.replace(signature, notes=signature.notes + notes) if notes else signature


def from_finding(finding: Finding) -> Signature:
    """The signature of an oracle finding (search findings, or a parsed report)."""
    stacks: dict[str, tuple[Frame, ...]] = {}
    unsymbolized = 0
    raw = dict(finding.stacks)
    if finding.kind == "leak" and "access" in raw and "alloc" not in raw:
        raw["alloc"] = raw.pop("access")  # LSan's first stack is where the block was allocated
    for name in ("access", "previous", "free", "alloc"):
        if name not in raw:
            continue
        frames, missing = library_frames(raw[name])
        unsymbolized += missing
        stacks[name] = frames
    notes = []
    if unsymbolized:
        notes.append(f"{unsymbolized} frame(s) had no function name (module+offset): a "
                     "symbolized report matches more precisely")
    if not any(stacks.values()):
        notes.append("no library frame: only the kind can be compared")
    return Signature(kind=finding.kind, stacks=stacks, source=finding.source,
                     summary=finding.summary, notes=tuple(notes))


def identity(finding: Finding) -> str:
    """A finding's identity across runs, builds and workers: the fingerprint of its
    signature. A finding with no library frame (a leak seen by the driver, an invariant,
    a hang) adds its location, addresses and line dropped, so that two such findings of
    one kind stay apart."""
    sig = from_finding(finding)
    text = sig.fingerprint()
    if not any(sig.stacks.values()):
        text += "|" + re.sub(r":\d+$", "", re.sub(r"0x[0-9a-fA-F]+", "", finding.location or ""))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def library_frames(frames, limit: int = FRAMES) -> tuple[tuple[Frame, ...], int]:
    """The first `limit` library frames of a raw stack (oracle frame strings), with
    consecutive repeats folded (recursion, and a coroutine's split functions), and how
    many frames were unsymbolized."""
    out: list[Frame] = []
    missing = 0
    for raw in frames:
        frame = normalize_frame(raw)
        if frame is None:
            if _MODULE_OFFSET.match(raw.strip()) and not any(s in raw for s in _DROP_FILES):
                missing += 1
            continue
        if out and out[-1].same_function(frame):
            continue
        out.append(frame)
        if len(out) == limit:
            break
    return tuple(out), missing


def normalize_frame(raw: str) -> Frame | None:
    """A library frame from one oracle frame string ("func /dir/file:line"), or None for
    a frame of the runtime, the standard library, coroutine machinery or stresscoro."""
    text = raw.strip()
    if not text or _MODULE_OFFSET.match(text):
        return None
    m = _WHERE.match(text)
    func, where = (m.group(1), os.path.normpath(m.group(2))) if m else (text, "")
    if any(s in where for s in _DROP_FILES) or _CORO_CLONE.search(func):
        return None
    if where and _BARE.match(func):
        # GCC's symbolizer names a coroutine's split functions (and lambdas) by their
        # bare source name, without namespace or parameters: the clones above.
        return None
    name = normalize_name(func)
    if not name or name in _DROP_EXACT or name.startswith(_DROP_FUNCS) or _ADAPTER.search(name):
        return None
    return Frame(name=name, where=where.rsplit("/", 1)[-1])


def normalize_name(func: str) -> str:
    """A function name without template arguments, parameters, return type, ABI tags
    or clone suffixes: `ns::task<(flaw)1>::reset() [clone .isra.0]` -> `ns::task::reset`."""
    name = _ABI_TAG.sub("", _CLONE_SUFFIX.sub("", func)).replace("(anonymous namespace)", "{anon}")
    name = re.sub(r"\{lambda\([^)]*\)#\d+\}", "{lambda}", name)
    # Keep operators whose spelling holds brackets, then drop bracketed groups.
    keep = {spelling: f"operator_{i}_" for i, spelling in enumerate(_BRACKET_OPERATORS)}
    for spelling, token in keep.items():
        name = name.replace(spelling, token)
    name = _strip_groups(name)
    name = re.sub(r"(\s*(const|volatile|&&|&|noexcept))+\s*$", "", name.strip())
    m = _LAST_NAME.search(name)
    name = m.group(1) if m else name
    for spelling, token in keep.items():
        name = name.replace(token, spelling)
    return name


def _strip_groups(text: str) -> str:
    """Remove every <...> and (...) group, nested ones included."""
    out, depth = [], 0
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


# -- comparing two signatures -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StackComparison:
    name: str
    report: tuple[Frame, ...]
    finding: tuple[Frame, ...]
    shared: int  # frames shared in order
    same: bool

    @property
    def comparable(self) -> bool:
        return bool(self.report) and bool(self.finding)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How a finding's signature compares with a report's, stack by stack."""

    kinds_agree: bool
    stacks: tuple[StackComparison, ...]
    matches: bool
    similarity: float
    basis: str  # which stack decided, or "kind only"

    def differences(self) -> list[str]:
        out = []
        for s in self.stacks:
            if s.comparable and not s.same:
                out.append(f"{s.name} stack: report {_names(s.report)}, finding {_names(s.finding)}")
            elif s.report and not s.finding:
                out.append(f"{s.name} stack: the finding has no library frames there")
        return out


def _names(frames: tuple[Frame, ...]) -> str:
    return " > ".join(f.name for f in frames) or "(none)"


def _evidence(kind: str) -> tuple[str, ...]:
    if kind == _RACE:
        return ("access", "previous", "alloc")
    return _EVIDENCE.get(kind, _DEFAULT_EVIDENCE)


def kinds_agree(a: str, b: str) -> bool:
    return a == b or any(a in fam and b in fam for fam in KIND_FAMILIES)


def shared_in_order(a: tuple[Frame, ...], b: tuple[Frame, ...]) -> int:
    """Length of the longest run of frames the two stacks share in the same order."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, fa in enumerate(a):
        for j, fb in enumerate(b):
            table[i + 1][j + 1] = (table[i][j] + 1 if fa.same_function(fb)
                                   else max(table[i][j + 1], table[i + 1][j]))
    return table[len(a)][len(b)]


def same_stack(a: tuple[Frame, ...], b: tuple[Frame, ...]) -> bool:
    """The similarity rule: equal; or at least two frames shared in order (one, when
    a stack has only one); or the same number of frames, each a close string match."""
    if not a or not b:
        return False
    if len(a) == len(b) and all(x.same_function(y) for x, y in zip(a, b)):
        return True
    if shared_in_order(a, b) >= min(2, len(a), len(b)):
        return True
    return len(a) == len(b) and all(
        difflib.SequenceMatcher(None, x.name, y.name).ratio() >= CLOSE_RATIO for x, y in zip(a, b))


def compare(report: Signature, finding: Signature) -> Comparison:
    """Does `finding` show the crash of `report`?

    It does when the kinds agree (equal, or one of KIND_FAMILIES) and the stack that
    names the bug for that kind (free, then access, then alloc for a use after free or
    a double free; access for the rest; alloc for a leak; for a race, the two threads'
    stacks as an unordered pair, both the same) is the same stack by same_stack(). The first stack in
    that order that both sides have decides; if neither has any, the kind alone does.

    `similarity` (0 to 1, 1 for equal signatures) steers the search toward closer
    findings: half for the kind (a quarter within a family), half for the share of
    the report's library frames found in order in the finding's stacks."""
    agree = kinds_agree(report.kind, finding.kind)
    fstacks = dict(finding.stacks)
    if report.kind == _RACE and finding.kind == _RACE:
        fstacks = _best_race_pairing(report, fstacks)
    rows = []
    for name, frames in report.stacks.items():
        other = fstacks.get(name, ())
        rows.append(StackComparison(name, frames, other, shared_in_order(frames, other),
                                    same_stack(frames, other)))
    by_name = {r.name: r for r in rows}
    decider = next((by_name[n] for n in _evidence(report.kind)
                    if n in by_name and by_name[n].comparable), None)
    if report.kind == _RACE:
        # Both threads' stacks: the one that wrote and the one it raced with.
        pair = [by_name[n] for n in ("access", "previous") if n in by_name and by_name[n].comparable]
        decider = pair[0] if pair else decider
        matches = agree and all(r.same for r in pair)
    else:
        matches = agree and (decider is None or decider.same)
    scored = [r.shared / len(r.report) for r in rows if r.report]
    frames_score = sum(scored) / len(scored) if scored else 0.0
    kind_score = 1.0 if report.kind == finding.kind else 0.5 if agree else 0.0
    similarity = round(0.5 * kind_score + 0.5 * frames_score, 4)
    return Comparison(kinds_agree=agree, stacks=tuple(rows), matches=matches,
                      similarity=similarity, basis=decider.name if decider else "kind only")


def _best_race_pairing(report: Signature, fstacks: dict) -> dict:
    """A race's two stacks may come in either order: take the pairing sharing more frames."""
    a, p = fstacks.get("access", ()), fstacks.get("previous", ())
    ra, rp = report.stacks.get("access", ()), report.stacks.get("previous", ())
    straight = shared_in_order(ra, a) + shared_in_order(rp, p)
    crossed = shared_in_order(ra, p) + shared_in_order(rp, a)
    if crossed > straight:
        return {**fstacks, "access": p, "previous": a}
    return fstacks


def similarity(report: Signature, finding: Signature) -> float:
    return compare(report, finding).similarity


def matches(report: Signature, finding: Signature) -> bool:
    return compare(report, finding).matches
