"""Reproduce a crash report: a campaign that fails only for findings matching the report's signature."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from . import signature as sig
from .oracle import Finding
from .runner import CampaignResult, FoundBug, run_campaign
from .targets import Target

# The sanitizer that produces each source of report.
_SANITIZER_OF = {"asan": "asan", "lsan": "asan", "tsan": "tsan", "ubsan": "ubsan"}


@dataclasses.dataclass
class Candidate:
    """One finding of the campaign, judged against the report."""

    bug: FoundBug
    signature: sig.Signature
    comparison: sig.Comparison

    def to_json(self) -> dict:
        return {**self.bug.to_json(), "signature": self.signature.to_json(),
                "similarity": self.comparison.similarity, "matches": self.comparison.matches,
                "decided_by": self.comparison.basis,
                "differences": self.comparison.differences()}


@dataclasses.dataclass
class ReproduceResult:
    """The outcome of `reproduce`: candidates in _rank order."""

    report: sig.Signature
    campaign: CampaignResult
    candidates: list[Candidate]
    # The verified C++ reproducer's own sanitizer report, compared with the given report.
    reproducer_check: sig.Comparison | None = None

    @property
    def match(self) -> Candidate | None:
        return self.candidates[0] if self.candidates and self.candidates[0].comparison.matches else None

    @property
    def others(self) -> list[Candidate]:
        return [c for c in self.candidates if c is not self.match]

    def suggestions(self) -> list[str]:
        """What to try when nothing matched, from what the closest finding lacked."""
        out = []
        closest = self.candidates[0] if self.candidates else None
        wanted = _SANITIZER_OF.get(self.report.source)
        if wanted and wanted != self.campaign.sanitizer:
            out.append(f"the report comes from {self.report.source}: rerun with --sanitizer {wanted}")
        if self.report.kind == "data-race" and self.campaign.sanitizer == "tsan":
            out.append("races need threads: try --threads 3")
        if closest is None or not closest.comparison.kinds_agree:
            out.append("no finding of this kind yet: give the search more room "
                       "(--max-examples 2000, --max-ops 20, --slots 4)")
        else:
            out.append("the kind was found but not these frames: a larger budget "
                       "(--max-examples 2000) or longer schedules (--max-ops 20)")
        if any(n.startswith("no library frame") or "no function name" in n for n in self.report.notes):
            out.append("the report has no or few named frames: symbolize it "
                       "(ASAN_OPTIONS=symbolize=1, or run it through llvm-symbolizer)")
        out.append("if the crash involves combinators or operations the adapter does not "
                   "declare (await, touch, threads), add them to the adapter")
        return out

    def to_json(self) -> dict:
        result = self.campaign.to_json()
        result["findings"] = [c.to_json() for c in self.candidates]
        result["reproduced"] = self.match is not None
        result["similarity"] = self.candidates[0].comparison.similarity if self.candidates else 0.0
        result["reproducer_report_matches"] = (self.reproducer_check.matches
                                               if self.reproducer_check else None)
        return result


def _rank(c: Candidate) -> tuple:
    """Matching findings first, the shortest (then the most similar) first; then the
    rest, the closest (then the shortest) first."""
    length, similarity = len(c.bug.schedule.ops), -c.comparison.similarity
    return (0, length, similarity) if c.comparison.matches else (1, similarity, length)


def sanitizer_for(report: sig.Signature, target: Target) -> str:
    """The sanitizer that can show the report's crash: the one that wrote it."""
    return _SANITIZER_OF.get(report.source, target.sanitizers[0])


def reproduce(report: sig.Signature, target: Target, sanitizer: str | None = None,
              **campaign_options) -> ReproduceResult:
    """Search `target` for a schedule whose finding matches `report` (signature.compare);
    steer toward closer findings and shrink while the match holds."""
    sanitizer = sanitizer or sanitizer_for(report, target)
    judged: dict[tuple, sig.Comparison] = {}

    def judge(f: Finding) -> sig.Comparison:
        key = (f.kind, tuple(sorted(f.stacks.items())))
        if key not in judged:
            judged[key] = sig.compare(report, sig.from_finding(f))
        return judged[key]

    fails: Callable[[Finding], bool] = lambda f: judge(f).matches  # noqa: E731
    score: Callable[[Finding], float] = lambda f: judge(f).similarity  # noqa: E731
    campaign = run_campaign(target, sanitizer, fails=fails, score=score, **campaign_options)
    candidates = []
    for bug in campaign.findings:
        s = sig.from_finding(bug.finding)
        candidates.append(Candidate(bug, s, sig.compare(report, s)))
    candidates.sort(key=_rank)
    # Findings told apart by location (file:line) may still be one crash by signature.
    seen: set[str] = set()
    candidates = [c for c in candidates
                  if not (c.signature.fingerprint() in seen or seen.add(c.signature.fingerprint()))]
    result = ReproduceResult(report, campaign, candidates)
    match = result.match
    if match is not None and match.bug.reproducer is not None and match.bug.reproducer.cpp_output:
        try:
            own = sig.parse(match.bug.reproducer.cpp_output)
        except sig.ReportError:
            own = None
        result.reproducer_check = sig.compare(report, own) if own is not None else None
    return result
