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
from hypothesis.statistics import collector as hypothesis_statistics

from . import minimize, reproducer
from .oracle import Finding, sync_points
from .schedule import InvalidSchedule, Schedule
from .session import TargetSession
from .signature import identity
from .strategies import (DEFAULT_MAX_OPS, drive_suffixes, interleavings, schedule_choices, schedules,
                         session_arguments)
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


def fence_flags(tsan_fence_annotations: bool) -> tuple[str, ...]:
    """The compiler flags of the TSan fence-annotations opt-in (stresscoro/tsan_fence.hpp)."""
    return ("-DSTRESSCORO_TSAN_FENCE_ANNOTATIONS=1",) if tsan_fence_annotations else ()


def default_threads(sanitizer: str, target: Target | None = None) -> int:
    """Schedule threads when --threads is not given: the target's own `threads`
    metadata if it has one, else 2 under tsan (races need two threads) and 1 elsewhere."""
    if target is not None and target.threads:
        return target.threads
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
                         for k, line in enumerate(self.schedule.render(self.factory_names))] + [
            f"    preempted: {line}" for line in self.finding.preemption_lines(self.schedule, self.factory_names)]

    def to_json(self) -> dict:
        return {
            "kind": self.finding.kind,
            "length": len(self.schedule.ops),
            "ops": [o.to_json() for o in self.schedule.ops],
            "preemptions": [p.to_json() for p in self.schedule.preemptions],
            "readable": self.schedule.render(self.factory_names),
            "preempted": self.finding.preemption_lines(self.schedule, self.factory_names),
            "op_index": self.finding.op_index,
            "where": self.finding.where(self.schedule, self.factory_names),
            "related_ops": list(self.finding.related_ops),
            "rule": broken_rule(self.finding, self.schedule),
            "preconditions": self.preconditions,
            "summary": self.finding.summary,
            "location": self.finding.location,
            "stacks": {k: list(v) for k, v in self.finding.stacks.items()},
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
    shrink_runs: int = 0  # schedules Hypothesis ran while shrinking (not in `examples`)
    resources: dict = dataclasses.field(default_factory=dict)  # TargetSession.usage()

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
            "shrink_runs": self.shrink_runs,
            "elapsed_s": round(self.elapsed_s, 3),
            "verdict": self.verdict,
            "expected": self.target.expected,
            "bug_class": self.target.bug_class,
            "as_expected": self.as_expected,
            "note": self.note,
            "adapter": str(self.target.adapter),
            "resources": self.resources,
            "findings": [f.to_json() for f in self.findings],
        }


class BudgetSpent(KeyboardInterrupt):
    """Raised inside the property when the campaign's time is up; search() catches it.
    A KeyboardInterrupt to Hypothesis, which passes it straight through and, unlike any
    other exception, does not save the schedule in flight to the example database."""


MAX_ROUNDS = 64  # each round shrinks at least one new signature; this bounds a flaky target


class Campaign:
    """One target under one sanitizer being searched: the search session, the property
    Hypothesis runs, and everything found so far.

    Invariants: `found` holds one FoundBug per signature, with the shortest schedule seen
    for it; a signature in `known` has been shrunk and no longer fails the property, so
    the search goes on past it. `examples` counts schedules generated (or replayed from
    the database), `shrink_runs` those Hypothesis ran while shrinking.

    Another engine (the native explorer, a fuzzer input) fills `found` and `examples`
    itself through `session` and ends with result() all the same."""

    def __init__(self, target: Target, sanitizer: str, *, compiler: str | None = None,
                 timeout_s: float = 10.0, memory_mb: int = reproducer.DEFAULT_MEMORY_MB,
                 max_ops: int = DEFAULT_MAX_OPS,
                 slots: int | None = None, threads: int | None = None,
                 tsan_fence_annotations: bool = False,
                 progress: Callable[[str], None] | None = None,
                 fails: Callable[[Finding], bool] | None = None,
                 score: Callable[[Finding], float] | None = None,
                 started: float | None = None) -> None:
        """`started`: the time.perf_counter() the campaign's clock starts at (default now)."""
        from hypothesis import strategies as st

        self.target = target
        self.sanitizer = sanitizer
        self.compiler = compiler
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.annotated = tsan_fence_annotations
        self.extra_cxxflags = fence_flags(tsan_fence_annotations)
        self.session = TargetSession(target, sanitizer, compiler=compiler, timeout_s=timeout_s,
                                     memory_mb=memory_mb, symbolize=False,
                                     extra_cxxflags=self.extra_cxxflags)
        self.progress = progress
        self.fails = fails
        self.score = score
        self.found: dict[tuple[str, str], FoundBug] = {}
        self.known: set[tuple[str, str]] = set()
        self.examples = 0
        self.shrink_runs = 0
        self.deadline: float | None = None  # time.perf_counter() at which the search stops
        self.note = ""
        self._round_calls = 0
        self._round_first_failure: int | None = None  # calls of this round before its first new finding
        self._t0 = time.perf_counter() if started is None else started
        self._last_report = self._t0
        self._strategy_options = dict(max_ops=max_ops, slots=slots,
                                      threads=threads or default_threads(sanitizer, target))
        # Deferred: the strategy needs the target's op set, which needs a build; a test
        # collected (by pytest or HypoFuzz) but never run must not pay for one.
        self.schedules = st.deferred(lambda: schedules(self.target.name,
                                                       **self._strategy_arguments()))

    def __enter__(self) -> "Campaign":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def _strategy_arguments(self) -> dict:
        """schedules()'s arguments after the target's name: what the strategy draws from."""
        return session_arguments(self.session.open(), **self._strategy_options)

    def _keyed(self, test: Callable, database_key: bytes | None = None) -> Callable:
        """`test` marked with the campaign's part of its example-database key (default:
        one per target and sanitizer); Hypothesis adds the test's own digest."""
        test._hypothesis_internal_add_digest = database_key or (
            f"stresscoro:{self.target.name}:{self.target.adapter}:{self.sanitizer}".encode())
        return test

    def database_key(self) -> bytes:
        """The key under which a `fuzz` campaign on this target and sanitizer keeps its
        examples (what Hypothesis computes for the property search() runs)."""
        from hypothesis.internal.reflection import function_digest

        return function_digest(self._keyed(self.property()))

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._t0

    def check(self, s: Schedule) -> None:
        """The property: run `s`; raise FindingError for a finding not shrunk yet."""
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            raise BudgetSpent
        outcome = self.session.run(s)
        ran = [(s, sync_points(outcome.raw))]
        if outcome.ok and (self.session.combinators or self.session.custom_ops):
            # Also the schedule plus one op that drives the library on (a resume of a
            # live object, a step): where a composition bug's last op would be.
            composition = bool(self.session.combinators)
            for driven in drive_suffixes(s, self.session.capabilities, self.session.factories,
                                         self.session.rules, composition):
                outcome = self.session.run(driven)
                if not outcome.ok:
                    s = driven
                    break
                ran.append((driven, sync_points(outcome.raw)))
        if outcome.ok:
            # And each with one preemption inside an op, at the sync points its run
            # passed, the latest ops first (strategies.interleavings).
            for base, points in ran:
                for preempted in interleavings(base, points):
                    outcome = self.session.run(preempted)
                    if not outcome.ok:
                        s = preempted
                        break
                if not outcome.ok:
                    break
        self._round_calls += 1
        now = time.perf_counter()
        if self.progress and now - self._last_report >= PROGRESS_EVERY_S:
            self._last_report = now
            self.progress(f"{self.target.name}/{self.sanitizer}: {self.examples + self._round_calls} schedules, "
                          f"{len(self.found)} finding(s), {(self.examples + self._round_calls) / (now - self._t0):.0f}/s")
        if self.score is not None:
            hypothesis_target(max((self.score(x) for x in outcome.findings), default=0.0),
                              label="similarity")
        f = _chosen(outcome.findings, self.fails)
        if f is None:
            return
        bug = self.found.get(f.signature)
        if bug is None:
            # A finding first seen while shrinking another counts the examples before it.
            seen_at = self.examples + (self._round_first_failure or self._round_calls)
            self.found[f.signature] = FoundBug(f, s, seen_at,
                                               now - self._t0, now - self._t0,
                                               factory_names=self.session.factory_names,
                                               preconditions=forbidden(self.session.rules))
        elif len(s.ops) <= len(bug.schedule.ops):
            bug.finding, bug.schedule, bug.minimal_s = f, s, now - self._t0
        if self.fails is not None and not self.fails(f):
            return
        if f.signature in self.known:
            return
        if self._round_first_failure is None:
            self._round_first_failure = self._round_calls
        if self.fails is not None:
            # Every finding the property rejects is the one failure it looks for:
            # shrinking may move it to another location as long as it still fails.
            raise _error_for(f, ("property", "fails"))
        raise _error_for(f)

    def property(self) -> Callable:
        """The undecorated property for @given(schedule=self.schedules)."""
        campaign = self

        def stresscoro_campaign(schedule) -> None:
            campaign.check(schedule)

        return stresscoro_campaign

    def search(self, *, max_examples: int | None = None, seed: int | None = None,
               profile: str = DEFAULT_PROFILE, database: object = "default",
               budget_s: float | None = None, test: Callable | None = None,
               call_kwargs: dict | None = None, database_key: bytes | None = None) -> None:
        """Run Hypothesis over the property in rounds until `max_examples` schedules
        (default: the profile's) or `budget_s` seconds are spent.

        Each round ends at its first new finding, once shrunk; the next round searches on
        with that signature known, so a second bug of the same target is found in the
        same campaign. Only the first round replays the example database: a later one
        would delete the entries of signatures it no longer fails on.

        `test` is an undecorated property taking `data` (and `call_kwargs`), for a
        caller whose property must be an ordinary Hypothesis test of its own (the pytest
        plugin); it must draw from self.schedules and call self.check. `database_key` keys its database
        entries (default: one per target and sanitizer)."""
        from hypothesis import Phase
        from hypothesis import strategies as st

        if profile not in PROFILES:
            raise ValueError(f"Expected a profile in {', '.join(PROFILES)} but got profile={profile!r}")
        self.session.open()
        total = max_examples if max_examples is not None else PROFILES[profile].max_examples
        if max_examples is None and self.session.combinators:
            total *= COMPOSITION_BUDGET_FACTOR
        if budget_s is not None:
            self.deadline = self._t0 + search_seconds(budget_s)
        inner = self._keyed(test or self.property(), database_key)
        overrides = dict(deadline=None, suppress_health_check=list(HealthCheck),
                         report_multiple_bugs=True, print_blob=False, verbosity=Verbosity.quiet)
        if database != "default":
            overrides["database"] = database
        self.session.open()
        # A property of its own (`fails`) looks for one failure: a single round.
        for round_no in range(1 if self.fails is not None else MAX_ROUNDS):
            left = total - self.examples
            if left <= 0:
                break
            skip = (Phase.explain,) if round_no == 0 else (Phase.explain, Phase.explicit, Phase.reuse)
            round_settings = dict(overrides, max_examples=left,
                                  phases=[p for p in Phase if p not in skip])
            hyp_test = given(data=st.data())(inner) if test else given(schedule=self.schedules)(inner)
            if seed is not None:
                # Hypothesis's @seed also sets database=None. Settings applied after it
                # keep a database the caller passed explicitly; the default one stays off.
                hyp_test = hypothesis_seed(seed + 7919 * round_no)(hyp_test)
                round_settings.setdefault("database", None)
            this_round = settings(PROFILES[profile], **round_settings)
            hyp_test = this_round(hyp_test)
            if round_no == 0 and database_key is not None:
                self._adopt_campaign_entries(inner, this_round.database)
            known_before = len(self.known)
            self._round_calls, self._round_first_failure = 0, None
            stats: list[dict] = []
            try:
                with hypothesis_statistics.with_value(stats.append):
                    hyp_test(**(call_kwargs or {}))
            except BudgetSpent:
                break
            except FindingError as e:
                self.known.add(e.finding.signature)
            except BaseExceptionGroup as e:
                if isinstance(e, Flaky):
                    flaky = "some findings did not reproduce every time (flaky)"
                    if flaky not in self.note:
                        self.note = "\n".join(filter(None, [self.note, flaky]))
                    self.known.update(self.found)
                else:
                    rest = e.subgroup(lambda x: not isinstance(x, (FindingError, BaseExceptionGroup)))
                    if rest is not None:
                        raise rest
                    self.known.update(x.finding.signature for x in _leaves(e))
            else:
                break  # a round without a new finding: this budget's search space is done
            finally:
                self._count_round(stats)
            if len(self.known) == known_before:
                break

    def _count_round(self, stats: list[dict]) -> None:
        """Split the round's calls into examples and shrink runs. Hypothesis's own
        per-phase statistics give the split when the round ran to its end; a round the
        budget cut short counts its calls up to its first new finding as examples and
        the rest as shrink runs (Hypothesis may still have been generating then)."""
        calls, self._round_calls = self._round_calls, 0
        if not calls:
            return
        if stats:
            phases = stats[-1]
            # Overruns and rejected draws never reached the property.
            searched = sum(1 for p in ("reuse", "generate")
                           for case in phases.get(f"{p}-phase", {}).get("test-cases", [])
                           if case.get("status") in ("valid", "interesting"))
            searched = min(searched, calls)
        elif self._round_first_failure is None:
            searched = calls
        else:
            searched = self._round_first_failure
        self.examples += searched
        self.shrink_runs += calls - searched

    def _shrink_preempted(self, end: float | None) -> None:
        """A finding whose schedule carries a preemption the campaign added
        (strategies.interleavings) was shrunk by Hypothesis as the schedule it drew,
        without it: shrink it once more as it is (stresscoro.minimize), keeping the kind."""
        if self.session.worker is None:
            return
        for bug in self.found.values():
            if not bug.schedule.preemptions or (end is not None and time.perf_counter() >= end):
                continue
            kind = bug.finding.kind

            def fails(c: Schedule) -> bool:
                f = _chosen(self.session.run(c).findings, self.fails)
                return f is not None and f.kind == kind

            small, _ = minimize.shrink(bug.schedule, fails, self.session.factories,
                                       self.session.rules, self.session.capabilities)
            if small is not bug.schedule:
                found = _chosen(self.session.run(small).findings, self.fails)
                if found is not None and found.kind == kind:
                    bug.schedule, bug.finding = small, found
                    bug.minimal_s = self.elapsed_s

    def result(self, *, out_dir: Path | None = None, verify: bool = True,
               budget_s: float | None = None, database: object = None) -> "CampaignResult":
        """Symbolize, write and verify every finding; the campaign's result, for every
        search engine. With a budget, steps that would end past it are skipped and say
        so. `database` (a Hypothesis example database): keep each finding's minimal
        schedule there for the next `fuzz` campaign to replay first, for an engine
        other than Hypothesis, which keeps its own."""
        end = None if budget_s is None else self._t0 + budget_s
        notes = [*(self.session.notes if self.session.worker is not None else []), self.note]
        drawn_from = self._strategy_arguments() if database is not None and self.found else None
        self._shrink_preempted(end)
        self.close()
        bugs = sorted(self.found.values(), key=lambda b: b.first_example)
        if bugs:
            _finalize(bugs, self.target, self.sanitizer, self.compiler, self.timeout_s,
                      self.memory_mb, self.extra_cxxflags, self.fails, end)
            bugs = one_per_signature(bugs, self.fails)
            if drawn_from is not None:
                notes += self._save_examples(bugs, database, drawn_from)
        if out_dir is not None:
            per_kind: dict[str, int] = {}
            for bug in bugs:
                if self.fails is not None and not self.fails(bug.finding):
                    continue
                per_kind[bug.finding.kind] = per_kind.get(bug.finding.kind, 0) + 1
                bug.reproducer = reproducer.write(bug.schedule, self.target, self.session.options,
                                                  bug.finding, bug.factory_names, out_dir,
                                                  index=per_kind[bug.finding.kind],
                                                  timeout_s=self.timeout_s, memory_mb=self.memory_mb)
                if not verify:
                    bug.reproducer.notes.append("not run (verification turned off)")
                    continue
                if end is None:
                    reproducer.verify(bug.reproducer, bug.finding, timeout_s=self.timeout_s,
                                      memory_mb=self.memory_mb, progress=self.progress)
                    continue
                left = end + BUDGET_GRACE_S - time.perf_counter()
                if left >= VERIFY_MIN_S:
                    # Compile and runs together stay within what is left.
                    reproducer.verify(bug.reproducer, bug.finding, timeout_s=min(self.timeout_s, left / 3),
                                      compile_timeout_s=left / 2, memory_mb=self.memory_mb,
                                      progress=self.progress)
                else:
                    bug.reproducer.notes.append("not re-run: the time budget was spent")
        verdict = "findings" if bugs else "clean"
        note = "\n".join(filter(None, notes))
        build = self.session.build
        blind = build.tsan_blind_spots if self.sanitizer == "tsan" and build else ()
        if blind and not self.annotated:
            verdict = "unverifiable"
            note = (f"unverifiable under tsan: the target uses {', '.join(blind)}, which "
                    "ThreadSanitizer does not model, so its race reports there may be false "
                    "and its silence proves nothing. To verify it anyway, annotate the fence "
                    "(stresscoro/tsan_fence.hpp) and rerun with --tsan-fence-annotations.")
        elif blind:
            note = (f"the target uses {', '.join(blind)}; checked through its "
                    "STRESSCORO_TSAN_ACQUIRE/RELEASE annotations (--tsan-fence-annotations)")
        return CampaignResult(target=self.target, sanitizer=self.sanitizer, examples=self.examples,
                              elapsed_s=self.elapsed_s, findings=bugs, verdict=verdict,
                              note=note, annotated=self.annotated, shrink_runs=self.shrink_runs,
                              resources=self.session.usage())

    def _adopt_campaign_entries(self, test: Callable, database) -> None:
        """Copy what `fuzz` and `explore` keep for this target and sanitizer (the entries
        under database_key()) under the key of `test`, a property keyed by its caller
        (the pytest plugin keys by test id, as HypoFuzz does), so that its first examples
        are those findings. Both draw with the same strategy, so the choices mean the same
        schedules; an entry that no longer fails is dropped from the test's key by
        Hypothesis, as any other."""
        if database is None:
            return
        from hypothesis.internal.reflection import function_digest

        own = function_digest(test)
        have = set(database.fetch(own))
        for entry in database.fetch(self.database_key()):
            if entry not in have:
                database.save(own, entry)

    def _save_examples(self, bugs: list[FoundBug], database, drawn_from: dict) -> list[str]:
        """Save each bug's minimal schedule to `database` under database_key(), as the
        choices the campaign's strategy draws it from (strategies.schedule_choices), the
        form Hypothesis replays; every entry is replayed through the strategy before it
        is saved. Returns a note for each schedule the strategy cannot draw."""
        from hypothesis.database import choices_to_bytes

        key = self.database_key()
        strategy = schedules(self.target.name, **drawn_from)
        notes = []
        for bug in bugs:
            if self.fails is not None and not self.fails(bug.finding):
                continue
            try:
                choices = schedule_choices(bug.schedule, **drawn_from)
                drawn = _drawn_from(strategy, choices)
                if drawn is None or (drawn.ops, drawn.preemptions) != (
                        bug.schedule.ops, bug.schedule.preemptions):
                    raise InvalidSchedule("the strategy draws another schedule from its choices")
            except InvalidSchedule as e:
                notes.append(f"the {bug.finding.kind} schedule is not kept in the example "
                             f"database: {e}")
                continue
            database.save(key, choices_to_bytes(choices))
        return notes


def _drawn_from(strategy, choices: tuple) -> Schedule | None:
    """What `strategy` draws from `choices`, as Hypothesis replays a database entry
    (None: the choices run out first)."""
    from hypothesis.control import BuildContext
    from hypothesis.errors import StopTest
    from hypothesis.internal.conjecture.data import ConjectureData

    data = ConjectureData.for_choices(choices)
    try:
        with BuildContext(data, wrapped_test=_drawn_from):
            return data.draw(strategy)
    except StopTest:
        return None


def example_database(database: object, seed: int | None):
    """The example database a campaign of another engine keeps its findings in, by
    search()'s conventions: "default" is Hypothesis's own, off under a fixed seed
    (as Hypothesis's @seed turns it off); None is none; else `database` itself."""
    if database != "default":
        return database
    return None if seed is not None else settings().database


# A budget covers the whole campaign: the search stops early enough to leave time for
# the symbolized re-run of each finding and for writing and re-running its reproducers;
# those steps start only while time is left and are cut off BUDGET_GRACE_S after it.
VERIFY_MIN_S = 4.0  # a compile and two short runs
BUDGET_GRACE_S = 1.5


def search_seconds(budget_s: float) -> float:
    """The part of a budget spent searching; the rest (40 %, at most 10 s) goes to the
    symbolized re-runs and the reproducers (one verification takes about 3-6 s)."""
    return budget_s - min(10.0, budget_s * 0.4)


def _leaves(group: BaseExceptionGroup):
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            yield from _leaves(e)
        elif isinstance(e, FindingError):
            yield e


def run_campaign(target: Target, sanitizer: str, *, max_examples: int | None = None,
                 seed: int | None = None, profile: str = DEFAULT_PROFILE,
                 database: object = "default", out_dir: Path | None = None,
                 verify: bool = True, compiler: str | None = None, timeout_s: float = 10.0,
                 memory_mb: int = reproducer.DEFAULT_MEMORY_MB,
                 max_ops: int = DEFAULT_MAX_OPS, slots: int | None = None,
                 threads: int | None = None, tsan_fence_annotations: bool = False,
                 budget_s: float | None = None,
                 progress: Callable[[str], None] | None = None,
                 fails: Callable[[Finding], bool] | None = None,
                 score: Callable[[Finding], float] | None = None) -> CampaignResult:
    """Search `target` under `sanitizer`; shrink, write and verify every distinct finding.

    `threads` defaults to the target's `threads` metadata, else to 2 under tsan (races
    need two threads) and 1 elsewhere.
    `tsan_fence_annotations` builds with STRESSCORO_TSAN_FENCE_ANNOTATIONS, the opt-in
    that lets TSan check a fence-synchronised target (stresscoro/tsan_fence.hpp).
    `budget_s` bounds the whole campaign, reports included: the search stops at
    search_seconds(budget_s) with what it found.
    `fails(finding)`, when given, decides which findings fail the property: the others
    are recorded (shortest schedule seen) but neither stop nor steer the search, and get
    no reproducers. `score(finding)` is maximised with Hypothesis's target()."""
    if profile not in PROFILES:
        raise ValueError(f"Expected a profile in {', '.join(PROFILES)} but got profile={profile!r}")
    with Campaign(target, sanitizer, compiler=compiler, timeout_s=timeout_s, memory_mb=memory_mb,
                  max_ops=max_ops, slots=slots, threads=threads,
                  tsan_fence_annotations=tsan_fence_annotations, progress=progress,
                  fails=fails, score=score) as campaign:
        campaign.search(max_examples=max_examples, seed=seed, profile=profile,
                        database=database, budget_s=budget_s)
        return campaign.result(out_dir=out_dir, verify=verify, budget_s=budget_s)


def _chosen(findings: list[Finding], fails: Callable[[Finding], bool] | None) -> Finding | None:
    """The finding a run stands for: the first that fails the property, else the primary."""
    if fails is not None:
        wanted = next((f for f in findings if fails(f)), None)
        if wanted is not None:
            return wanted
    return findings[0] if findings else None


def one_per_signature(bugs: list[FoundBug],
                      fails: Callable[[Finding], bool] | None = None) -> list[FoundBug]:
    """One bug per crash signature (signature.identity): the search keys findings by
    kind and first location, and one crash reached through two code paths, or seen
    once symbolized and once not, can land under two keys. The shortest schedule wins,
    then the first seen; the order stays that of first sight."""
    best: dict[tuple[str, bool], FoundBug] = {}
    for bug in bugs:
        key = (identity(bug.finding), fails is None or fails(bug.finding))
        if key not in best or len(bug.schedule.ops) < len(best[key].schedule.ops):
            best[key] = bug
    return sorted(best.values(), key=lambda b: b.first_example)


def _finalize(bugs: list[FoundBug], target: Target, sanitizer: str, compiler: str | None,
              timeout_s: float, memory_mb: int, extra_cxxflags: tuple[str, ...],
              fails: Callable[[Finding], bool] | None = None, end: float | None = None) -> None:
    """Re-run each minimal schedule with symbolized reports, for readable stacks, and
    renumber its slots from 0 where that keeps the same finding.

    The search runs unsymbolized (several times faster per crash); a finding keeps its
    search-time details if the re-run shows a different kind, or no longer fails the
    campaign's property. Past `end` (a perf_counter time), the rest keep their
    search-time details."""
    def same(old: Finding, new: Finding | None) -> bool:
        return (new is not None and new.kind == old.kind
                and (fails is None or fails(new) == fails(old)))

    if end is not None:
        timeout_s = min(timeout_s, max(0.5, end - time.perf_counter()))
    with TargetSession(target, sanitizer, compiler=compiler, timeout_s=timeout_s,
                       memory_mb=memory_mb, extra_cxxflags=extra_cxxflags) as session:
        for bug in bugs:
            if end is not None and time.perf_counter() >= end:
                break
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
