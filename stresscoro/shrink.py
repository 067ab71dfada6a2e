"""Findings that come from outside a Hypothesis search (a fuzzer's crash file, the
native explorer) are shrunk here (stresscoro.minimize) and reported through the
campaign's own ending (runner.Campaign.result): same JSON, same deduplication, same
reproducers, same verification, and the minimal schedules kept in the same example
database: each distinct finding's shortest schedule is shrunk while it still shows the
same kind of finding."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .minimize import shrink
from .oracle import Finding
from .runner import Campaign, CampaignResult, FoundBug, forbidden
from .schedule import Schedule
from .strategies import DEFAULT_MAX_OPS
from .targets import Target


def report_schedules(target: Target, sanitizer: str, schedules: Sequence[Schedule], *,
                     examples: int | None = None, t0: float | None = None,
                     first_seen: Sequence[float] = (), compiler: str | None = None,
                     timeout_s: float = 10.0, memory_mb: int = 4096, out_dir=None,
                     verify: bool = True, progress: Callable[[str], None] | None = None,
                     database: object = None, max_ops: int | None = None,
                     slots: int | None = None, threads: int | None = None,
                     tsan_fence_annotations: bool = False) -> CampaignResult:
    """Run each schedule (a fuzzer input, an explorer's finding), shrink every distinct
    finding to a minimal schedule, and end the campaign as `fuzz` does (Campaign.result).
    `database`: a Hypothesis example database where each minimal schedule is kept for
    the `fuzz` campaign drawing schedules with the same max_ops, slots and threads."""
    campaign = Campaign(target, sanitizer, compiler=compiler, timeout_s=timeout_s,
                        memory_mb=memory_mb, max_ops=max_ops or DEFAULT_MAX_OPS, slots=slots,
                        threads=threads, progress=progress, started=t0,
                        tsan_fence_annotations=tsan_fence_annotations)
    with campaign:
        session = campaign.session.open()
        names, factories, rules = session.factory_names, session.factories, session.rules
        # Classify every schedule first; shrink only the shortest of each distinct finding.
        firsts: dict[tuple[str, str], tuple[int, Schedule, Finding]] = {}
        for i, s in enumerate(schedules):
            f = session.run(s).primary
            if f is None:
                continue
            kept = firsts.get(f.signature)
            if kept is None or len(s.ops) < len(kept[1].ops):
                firsts[f.signature] = (i, s, f)
        for i, s, first in firsts.values():
            seen_s = first_seen[i] if i < len(first_seen) else campaign.elapsed_s
            kind = first.kind

            def fails(c: Schedule) -> bool:
                f = session.run(c).primary
                return f is not None and f.kind == kind

            small, _ = shrink(s, fails, factories, rules, session.capabilities)
            f = session.run(small).primary if small is not s else first
            if f is None or f.kind != kind:  # flaky: keep what was seen
                small, f = s, first
            bug = campaign.found.get(f.signature)
            if bug is None or len(small.ops) < len(bug.schedule.ops):
                campaign.found[f.signature] = FoundBug(f, small, i + 1, seen_s, campaign.elapsed_s,
                                                       factory_names=names,
                                                       preconditions=forbidden(rules))
        campaign.examples = examples if examples is not None else len(schedules)
        return campaign.result(out_dir=out_dir, verify=verify, database=database)
