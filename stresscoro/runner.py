"""Campaigns: Hypothesis searches schedules for one target, findings get reproducers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import target as hypothesis_target
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from . import reproducer
from .oracle import Finding
from .schedule import Schedule
from .session import TargetSession
from .strategies import DEFAULT_MAX_OPS, drive_suffixes, schedules_for
from .targets import Target

# Settings profiles, in Hypothesis's own terms. A campaign takes one by name;
# --max-examples overrides its budget.
PROFILES = {
    "dev": settings(max_examples=300),
    "ci": settings(max_examples=1000),
    "nightly": settings(max_examples=20000),
}
DEFAULT_PROFILE = "dev"
# A target that declares combinators gets this many times its profile's examples:
# composition bugs take 3 to 6 ops where the classic ones take 1 or 2.
COMPOSITION_BUDGET_FACTOR = 10
PROGRESS_EVERY_S = 2.0


def default_threads(sanitizer: str) -> int:
    return 2 if sanitizer == "tsan" else 1


class FindingError(AssertionError):
    """Raised inside the Hypothesis test for a schedule with a finding. Each distinct
    (kind, location) gets its own subclass, so Hypothesis keeps and shrinks each
    distinct finding as a distinct failure instead of collapsing them."""

    finding: Finding


_error_classes: dict[tuple[str, str], type[FindingError]] = {}


def _error_for(finding: Finding, key: tuple[str, str] | None = None) -> FindingError:
    """The error to raise for `finding`; findings with one `key` (default: kind and
    location) are one failure to Hypothesis, which shrinks it while the key holds."""
    key = key or finding.signature
    cls = _error_classes.get(key)
    if cls is None:
        name = "Finding_" + "".join(c if c.isalnum() else "_" for c in key[0])
        cls = type(name, (FindingError,), {"__module__": __name__})
        _error_classes[key] = cls
    err = cls(f"{finding.kind}: {finding.summary}")
    err.finding = finding
    return err


def broken_rule(finding: Finding, schedule: Schedule) -> str:
    """The ownership rule a finding shows broken, in the words a library documents."""
    kind = finding.kind
    at = schedule.ops[finding.op_index] if finding.op_index is not None and finding.op_index < len(schedule.ops) else None
    if kind == "data-race":
        if any(o.name == "send" for o in schedule.ops):
            return ("copies may be dropped on different threads: the last owner's destroy "
                    "must happen after every other owner's use")
        return "an object used by one thread at a time needs no synchronisation of its own"
    if kind == "leak":
        return "every frame is destroyed once its last owner is dropped"
    if kind == "stack-overflow":
        return "awaiting does not grow the stack (symmetric transfer)"
    if kind == "invariant:refcount-mismatch":
        return "the use count equals the number of live owners"
    if kind.startswith("invariant:probe") or kind.startswith("invariant:continuation"):
        return "a continuation is resumed exactly once and never destroyed by the library"
    if kind in ("heap-use-after-free", "double-free", "invariant:freed-twice",
                "invariant:owner-of-freed-frame", "invariant:resume-freed-frame"):
        if at is not None and at.name in ("resume", "await", "touch"):
            return "a live object never refers to a frame that was already freed"
        return "a frame is destroyed exactly once, by its last owner"
    return "no undefined behaviour under any sequence of allowed operations"


# The declared preconditions (stresscoro::rules), in the words a finding names them.
_PRECONDITIONS = (("use_after_move", False, "no use of a moved-from object"),
                  ("self_copy_assign", True, "no self copy-assignment"),
                  ("self_move_assign", False, "no self move-assignment"),
                  ("self_swap", True, "no self swap"),
                  ("await_twice", False, "no second await of one object"),
                  ("await_lvalue", True, "no co_await of an lvalue"),
                  ("resume_finished", True, "no resume of a finished coroutine"))


def forbidden(rules: dict) -> list[str]:
    """The preconditions a target's rules declare: schedules breaking them were never
    generated, so a finding holds under all of them."""
    return [words for key, default, words in _PRECONDITIONS if not rules.get(key, default)]


@dataclasses.dataclass
class FoundBug:
    """One distinct finding of a campaign, with its minimal schedule."""

    finding: Finding
    schedule: Schedule
    first_example: int  # examples run when it was first seen
    first_seen_s: float
    minimal_s: float  # seconds from the campaign's start to its minimal schedule
    reproducer: reproducer.Reproducer | None = None
    factory_names: list[str] = dataclasses.field(default_factory=list)
    preconditions: list[str] = dataclasses.field(default_factory=list)  # what was never generated

    def schedule_lines(self, label: str = "minimal schedule") -> list[str]:
        """What went wrong where, then the schedule, one numbered op a line."""
        f = self.finding
        head = (f"{f.kind} {f.where(self.schedule, self.factory_names)}; {label}, "
                f"{len(self.schedule.ops)} op(s):")
        return [head] + [f"    {k:>3}  {line}"
                         for k, line in enumerate(self.schedule.render(self.factory_names))]

    def to_json(self) -> dict:
        return {
            "kind": self.finding.kind,
            "length": len(self.schedule.ops),
            "ops": [o.to_json() for o in self.schedule.ops],
            "readable": self.schedule.render(self.factory_names),
            "op_index": self.finding.op_index,
            "related_ops": list(self.finding.related_ops),
            "rule": broken_rule(self.finding, self.schedule),
            "preconditions": self.preconditions,
            "summary": self.finding.summary,
            "location": self.finding.location,
            "first_example": self.first_example,
            "seconds_to_first": round(self.first_seen_s, 3),
            "seconds_to_minimal": round(self.minimal_s, 3),
            "reproducer": self.reproducer.to_json() if self.reproducer else None,
        }


@dataclasses.dataclass
class CampaignResult:
    target: Target
    sanitizer: str
    examples: int
    elapsed_s: float
    findings: list[FoundBug]
    verdict: str  # "clean", "findings", "unverifiable"
    note: str = ""
    annotated: bool = False  # built with the TSan fence annotations opt-in

    @property
    def as_expected(self) -> bool:
        expected = self.target.expected
        if expected == "unverifiable":
            if self.sanitizer != "tsan":
                return self.verdict == "clean"
            return self.verdict == ("clean" if self.annotated else "unverifiable")
        if expected == "clean":
            return self.verdict == "clean"
        return expected in {f.finding.kind for f in self.findings}

    def to_json(self) -> dict:
        return {
            "target": self.target.name,
            "sanitizer": self.sanitizer,
            "examples": self.examples,
            "elapsed_s": round(self.elapsed_s, 3),
            "verdict": self.verdict,
            "expected": self.target.expected,
            "bug_class": self.target.bug_class,
            "as_expected": self.as_expected,
            "note": self.note,
            "findings": [f.to_json() for f in self.findings],
        }


def run_campaign(target: Target, sanitizer: str, *, max_examples: int | None = None,
                 seed: int | None = None, profile: str = DEFAULT_PROFILE,
                 database: object = "default", out_dir: Path | None = None,
                 verify: bool = True, compiler: str | None = None, timeout_s: float = 10.0,
                 memory_mb: int = reproducer.DEFAULT_MEMORY_MB,
                 max_ops: int = DEFAULT_MAX_OPS, slots: int | None = None,
                 threads: int | None = None, tsan_fence_annotations: bool = False,
                 progress: Callable[[str], None] | None = None,
                 fails: Callable[[Finding], bool] | None = None,
                 score: Callable[[Finding], float] | None = None) -> CampaignResult:
    """Search `target` under `sanitizer`; shrink, write and verify every distinct finding.

    `threads` defaults to 2 under tsan (races need two threads) and 1 elsewhere.
    `tsan_fence_annotations` builds with STRESSCORO_TSAN_FENCE_ANNOTATIONS, the opt-in
    that lets TSan check a fence-synchronised target (stresscoro/tsan_fence.hpp).
    `fails(finding)`, when given, decides which findings fail the property: the others
    are recorded (shortest schedule seen) but neither stop nor steer the search, and get
    no reproducers. `score(finding)` is maximised with Hypothesis's target()."""
    if profile not in PROFILES:
        raise ValueError(f"Expected a profile in {', '.join(PROFILES)} but got profile={profile!r}")
    t0 = time.perf_counter()
    found: dict[tuple[str, str], FoundBug] = {}
    count = 0
    last_report = t0
    extra = ("-DSTRESSCORO_TSAN_FENCE_ANNOTATIONS=1",) if tsan_fence_annotations else ()
    search = TargetSession(target, sanitizer, compiler=compiler, timeout_s=timeout_s,
                           memory_mb=memory_mb, symbolize=False, extra_cxxflags=extra)
    with search as session:
        names = session.factory_names

        composition = bool(session.combinators or session.custom_ops)

        def one_schedule(s: Schedule) -> None:
            nonlocal count, last_report
            outcome = session.run(s)
            if outcome.ok and composition:
                # Also the schedule plus one op that drives the library on (a resume of
                # a live object, a step): where a composition bug's last op would be.
                for driven in drive_suffixes(s, session.capabilities):
                    outcome = session.run(driven)
                    if not outcome.ok:
                        s = driven
                        break
            count += 1
            now = time.perf_counter()
            if progress and now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                progress(f"{target.name}/{sanitizer}: {count} examples, {len(found)} finding(s), "
                         f"{count / (now - t0):.0f}/s")
            f = outcome.primary
            if score is not None:
                hypothesis_target(max((score(x) for x in outcome.findings), default=0.0), label="similarity")
            if f is None:
                return
            f = _chosen(outcome.findings, fails) or f
            bug = found.get(f.signature)
            if bug is None:
                found[f.signature] = FoundBug(f, s, count, now - t0, now - t0, factory_names=names,
                                              preconditions=preconditions)
            elif len(s.ops) <= len(bug.schedule.ops):
                bug.finding, bug.schedule, bug.minimal_s = f, s, now - t0
            if fails is None:
                raise _error_for(f)
            if fails(f):
                # Every finding the property rejects is the one failure it looks for:
                # shrinking may move it to another location as long as it still fails.
                raise _error_for(f, ("property", "fails"))

        overrides = dict(deadline=None, suppress_health_check=list(HealthCheck),
                         report_multiple_bugs=True, print_blob=False, verbosity=Verbosity.quiet)
        if max_examples is not None:
            overrides["max_examples"] = max_examples
        elif session.combinators:
            overrides["max_examples"] = PROFILES[profile].max_examples * COMPOSITION_BUDGET_FACTOR
        preconditions = forbidden(session.rules)
        if database != "default":
            overrides["database"] = database
        test = given(schedules_for(session, max_ops=max_ops, slots=slots,
                                   threads=threads or default_threads(sanitizer)))(one_schedule)
        # One example database entry per (target, sanitizer), not one for all campaigns.
        test.hypothesis.inner_test._hypothesis_internal_add_digest = (
            f"stresscoro:{target.name}:{target.adapter}:{sanitizer}".encode())
        if seed is not None:
            # Hypothesis's @seed also sets database=None. Settings applied after it keep a
            # database the caller passed explicitly; the default one stays off.
            test = hypothesis_seed(seed)(test)
            overrides.setdefault("database", None)
        test = settings(PROFILES[profile], **overrides)(test)
        note = "\n".join(session.notes)
        try:
            test()
        except (FindingError, BaseExceptionGroup) as e:
            if isinstance(e, Flaky):
                note = "\n".join(filter(None, [note, "some findings did not reproduce every time "
                                               "(flaky)"]))
            elif isinstance(e, BaseExceptionGroup):
                rest = e.subgroup(lambda x: not isinstance(x, (FindingError, BaseExceptionGroup)))
                if rest is not None:
                    raise rest
    bugs = sorted(found.values(), key=lambda b: b.first_example)
    if bugs:
        _finalize(bugs, target, sanitizer, compiler, timeout_s, memory_mb, extra, fails)
    if out_dir is not None:
        per_kind: dict[str, int] = {}
        for bug in bugs:
            if fails is not None and not fails(bug.finding):
                continue
            per_kind[bug.finding.kind] = per_kind.get(bug.finding.kind, 0) + 1
            bug.reproducer = reproducer.write(bug.schedule, target, search.options, bug.finding,
                                              bug.factory_names, out_dir,
                                              index=per_kind[bug.finding.kind],
                                              timeout_s=timeout_s, memory_mb=memory_mb)
            if verify:
                reproducer.verify(bug.reproducer, bug.finding, timeout_s=timeout_s,
                                  memory_mb=memory_mb, progress=progress)
    verdict = "findings" if bugs else "clean"
    blind = search.build.tsan_blind_spots if sanitizer == "tsan" and search.build else ()
    if blind and not tsan_fence_annotations:
        verdict = "unverifiable"
        note = (f"unverifiable under tsan: the target uses {', '.join(blind)}, which "
                "ThreadSanitizer does not model, so its race reports there may be false "
                "and its silence proves nothing. To verify it anyway, annotate the fence "
                "(stresscoro/tsan_fence.hpp) and rerun with --tsan-fence-annotations.")
    elif blind:
        note = (f"the target uses {', '.join(blind)}; checked through its "
                "STRESSCORO_TSAN_ACQUIRE/RELEASE annotations (--tsan-fence-annotations)")
    return CampaignResult(target=target, sanitizer=sanitizer, examples=count,
                          elapsed_s=time.perf_counter() - t0, findings=bugs, verdict=verdict,
                          note=note, annotated=tsan_fence_annotations)


def _chosen(findings: list[Finding], fails: Callable[[Finding], bool] | None) -> Finding | None:
    """The finding a run stands for: the first that fails the property, else the primary."""
    if fails is not None:
        wanted = next((f for f in findings if fails(f)), None)
        if wanted is not None:
            return wanted
    return findings[0] if findings else None


def _finalize(bugs: list[FoundBug], target: Target, sanitizer: str, compiler: str | None,
              timeout_s: float, memory_mb: int, extra_cxxflags: tuple[str, ...],
              fails: Callable[[Finding], bool] | None = None) -> None:
    """Re-run each minimal schedule with symbolized reports, for readable stacks, and
    renumber its slots from 0 where that keeps the same finding.

    The search runs unsymbolized (several times faster per crash); a finding keeps its
    search-time details if the re-run shows a different kind, or no longer fails the
    campaign's property."""
    def same(old: Finding, new: Finding | None) -> bool:
        return (new is not None and new.kind == old.kind
                and (fails is None or fails(new) == fails(old)))

    with TargetSession(target, sanitizer, compiler=compiler, timeout_s=timeout_s,
                       memory_mb=memory_mb, extra_cxxflags=extra_cxxflags) as session:
        for bug in bugs:
            canonical = bug.schedule.canonical()
            if canonical != bug.schedule:
                again = _chosen(session.run(canonical).findings, fails)
                if same(bug.finding, again):
                    bug.schedule = canonical
                    bug.finding = again
                    continue
            again = _chosen(session.run(bug.schedule).findings, fails)
            if same(bug.finding, again):
                bug.finding = again
