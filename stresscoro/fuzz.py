"""`stresscoro fuzz`: run campaigns over targets and sanitizers, report, pick the exit code."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from . import supervise
from . import targets as targets_mod
from .build import BuildError
from .cli import DEFAULT_SCHEDULES
from .export import InvalidFuzzerInput, decode_settings, fuzzer_input_file
from .outputs import check_dir, check_file, write_json, write_text_atomically
from .pool import JobPool
from .report import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, finding_lines, markdown, sarif
from .runner import CampaignResult, run_campaign
from .worker import WorkerError


@dataclasses.dataclass
class Job:
    target: targets_mod.Target
    sanitizer: str


def profile_for(requested: str | None) -> str:
    if requested:
        return requested
    env = os.environ.get("STRESSCORO_PROFILE")
    if env:
        return env
    return "ci" if os.environ.get("CI") else "dev"


def database_for(arg: str | None):
    if arg is None:
        return "default"
    if arg.lower() == "none":
        return None
    from hypothesis.database import DirectoryBasedExampleDatabase

    return DirectoryBasedExampleDatabase(arg)


def _progress(line: str) -> None:
    print(f"  ... {line}", file=sys.stderr, flush=True)


def _run_job(job: Job, options: dict) -> CampaignResult | str:
    """One campaign; a build or worker-start failure comes back as its message. With
    `fuzzer_input` in options, the campaign is that input's schedule, shrunk."""
    try:
        if options.get("fuzzer_input"):
            return _from_fuzzer_input(job, options)
        if options.get("engine") == "native":
            from .explore import run_explore

            return run_explore(job.target, job.sanitizer, progress=_progress,
                               **{k: v for k, v in options.items() if k != "engine"})
        return run_campaign(job.target, job.sanitizer, progress=_progress, **options)
    except (BuildError, WorkerError) as e:
        return f"{type(e).__name__}: {e}"


def _from_fuzzer_input(job: Job, options: dict) -> CampaignResult:
    from .explore import NativeProgram
    from .runner import example_database
    from .shrink import report_schedules

    program = NativeProgram(job.target, "none", compiler=options.get("compiler"))
    s = program.decode_file(options["fuzzer_input"], **options["decode_settings"])
    return report_schedules(job.target, job.sanitizer, [s], compiler=options.get("compiler"),
                            timeout_s=options["timeout_s"], memory_mb=options["memory_mb"],
                            out_dir=options["out_dir"], verify=options["verify"],
                            progress=_progress,
                            database=example_database(options["database"], options["seed"]),
                            tsan_fence_annotations=options.get("tsan_fence_annotations", False),
                            **{k: options.get(k) for k in ("max_ops", "slots", "threads")})


def run_suite(args, extra_targets: list[targets_mod.Target] = ()) -> int:
    """Every (target, sanitizer) campaign, in-process or in a pool of `--jobs` processes.
    `args` as cli.py parses them; `extra_targets` are the user's adapters (cli.py reads
    the options that describe them).

    Outputs are checked before the first campaign. The JSON file is rewritten (atomically)
    after every campaign, so an interrupted run keeps every finished one. The first
    SIGINT/SIGTERM stops starting campaigns and abandons the running ones (within the
    pool's grace time); what finished is printed and written, and the exit code is
    128 + the signal. A second one exits at once (supervise.Stop)."""
    chosen = [targets_mod.get(name) for name in args.targets] + list(extra_targets)
    if args.fuzzer_input and len(chosen) != 1:
        raise InvalidFuzzerInput(
            f"--fuzzer-input {args.fuzzer_input!r} needs exactly one target (a built-in name "
            f"or --adapter FILE), got {len(chosen)}: the bytes decode to a schedule only "
            "against the target the fuzzer was built for")
    chosen = chosen or targets_mod.builtin_targets()
    jobs = [Job(t, s) for t in chosen for s in ([args.sanitizer] if args.sanitizer else t.sanitizers)]
    out_dir = check_dir("--out", args.out)
    for option, path in (("--json", args.json), ("--sarif", args.sarif), ("--markdown", args.markdown)):
        if path:
            check_file(option, path)
    profile = profile_for(args.profile)
    options = dict(max_examples=args.max_examples, seed=args.seed, profile=profile,
                   database=database_for(args.database), out_dir=out_dir,
                   verify=not args.no_verify, compiler=args.compiler, timeout_s=args.timeout,
                   memory_mb=args.memory_mb, budget_s=args.time_budget)
    if args.max_ops:
        options["max_ops"] = args.max_ops
    if args.slots:
        options["slots"] = args.slots
    if args.threads:
        options["threads"] = args.threads
    if args.tsan_fence_annotations:
        options["tsan_fence_annotations"] = True
    if getattr(args, "engine", "hypothesis") == "native":
        options.update(engine="native", schedules=args.schedules or DEFAULT_SCHEDULES,
                       seconds=args.seconds,
                       interleave={"interleave": args.interleave, "depth": args.depth,
                                   "interleavings": args.interleavings, "bound": args.bound})
    if args.fuzzer_input:
        options = dict(fuzzer_input=fuzzer_input_file(args.fuzzer_input),
                       decode_settings=decode_settings(args), **options)
    quiet = args.json == "-"
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if quiet else \
        (lambda *a: print(*a, flush=True))
    engine = (f"native engine, {options['schedules']:,} schedules"
              f"{f' or {args.seconds:g} s' if args.seconds else ''} each"
              if options.get("engine") == "native" else f"profile {profile}")
    say(f"stresscoro {args.command}: {len(jobs)} campaign(s), {engine}"
        f"{f', seed {args.seed}' if args.seed is not None else ''}, reproducers in {args.out}/")
    supervise.clean_stale()
    t0 = time.perf_counter()
    done: dict[int, CampaignResult | str] = {}

    def finished(index: int, res: CampaignResult | str) -> None:
        done[index] = res
        _report(say, len(done), len(jobs), jobs[index], res)
        if args.json and args.json != "-":
            _write_results(args.json, jobs, done, t0, complete=False, stopped=None)

    with supervise.Stop() as stop:
        if args.jobs > 1 and len(jobs) > 1:
            def on_result(index: int, status: str, value) -> None:
                if status != "interrupted":  # "ok": a CampaignResult; "error": its message
                    finished(index, value)

            JobPool(min(args.jobs, len(jobs)), stop).run(
                [(_run_job, (j, options)) for j in jobs], on_result)
        else:
            for index, job in enumerate(jobs):
                if stop.requested:
                    break
                try:
                    with stop.interruptible():
                        res = _run_job(job, options)
                except KeyboardInterrupt:
                    break
                finished(index, res)
        stopped = stop.name if stop.requested else None
        code = stop.exit_code if stop.requested else None
    outcomes = [(jobs[i], done[i]) for i in sorted(done)]
    summary = _summary(outcomes, time.perf_counter() - t0)
    if stopped:
        say(f"stresscoro: interrupted ({stopped}): {len(done)} of {len(jobs)} campaign(s) "
            f"finished; their results are above{' and in ' + args.json if args.json else ''}")
    say(summary["text"])
    if args.json:
        _write_results(args.json, jobs, done, t0, complete=stopped is None, stopped=stopped)
    results = _results(outcomes)
    if args.sarif:
        from . import __version__

        write_text_atomically(args.sarif, json.dumps(sarif(results, tool_version=__version__),
                                                     indent=2) + "\n")
    if args.markdown:
        errors = [f"{r['target']}/{r['sanitizer']}: {r['error']}" for r in results if "error" in r]
        write_text_atomically(args.markdown, markdown([r for r in results if "error" not in r],
                                                      errors=errors))
    if code is not None:
        return code
    if any(isinstance(r, str) for _, r in outcomes):
        return EXIT_ERROR
    return EXIT_FINDINGS if any(r.findings for _, r in outcomes) else EXIT_CLEAN


def _write_results(dest: str, jobs: list[Job], done: dict, t0: float, *, complete: bool,
                   stopped: str | None) -> None:
    """The JSON document for the campaigns finished so far, in suite order."""
    outcomes = [(jobs[i], done[i]) for i in sorted(done)]
    summary = _summary(outcomes, time.perf_counter() - t0)
    write_json({"results": _results(outcomes),
                "summary": {k: v for k, v in summary.items() if k != "text"},
                "campaigns": len(jobs), "complete": complete, "interrupted": stopped}, dest)


def _results(outcomes: list[tuple[Job, CampaignResult | str]]) -> list[dict]:
    """The JSON form of each campaign; a campaign that could not start carries its error."""
    results = []
    for job, res in outcomes:
        if isinstance(res, str):
            results.append({"target": job.target.name, "sanitizer": job.sanitizer, "examples": 0,
                            "elapsed_s": 0.0, "error": res, "findings": []})
        else:
            results.append(res.to_json())
    return results


def _report(say, i: int, n: int, job: Job, res: CampaignResult | str) -> None:
    head = f"[{i:>2}/{n}] {job.target.name}/{job.sanitizer}:"
    if isinstance(res, str):
        say(f"{head} ERROR {res}")
        return
    rate = res.examples / res.elapsed_s if res.elapsed_s else 0.0
    # Built-in targets say what they should show; a user's target makes no such claim.
    expectation = ""
    if job.target.builtin:
        mark = "as expected" if res.as_expected else "UNEXPECTED"
        expectation = f"; expected {job.target.expected}: {mark}"
    if res.verdict == "unverifiable":
        say(f"{head} UNVERIFIABLE after {res.examples} examples in {res.elapsed_s:.1f} s{expectation}")
        say(f"    {res.note}")
    elif not res.findings:
        say(f"{head} clean after {res.examples} examples in {res.elapsed_s:.1f} s "
            f"({rate:.0f}/s){expectation}")
        for line in filter(None, res.note.split("\n")):
            say(f"    note: {line}")
        return
    else:
        say(f"{head} {len(res.findings)} finding(s) in {res.examples} examples, "
            f"{res.elapsed_s:.1f} s{expectation}")
    if res.note and res.verdict != "unverifiable":
        for line in res.note.split("\n"):
            say(f"    note: {line}")
    for bug in res.findings:
        lines = finding_lines(bug.to_json())
        say(f"    {lines[0]}")
        for line in lines[1:]:
            say(f"        {line}")


def _summary(outcomes, elapsed: float) -> dict:
    seeded = [(j, r) for j, r in outcomes if j.target.builtin and j.target.bug_class]
    correct = [(j, r) for j, r in outcomes if j.target.builtin and not j.target.bug_class]
    ok = lambda r: not isinstance(r, str) and r.as_expected  # noqa: E731
    found = sorted({j.target.bug_class for j, r in seeded if ok(r)})
    classes = sorted({j.target.bug_class for j, _ in seeded})
    unexpected = [f"{j.target.name}/{j.sanitizer}" for j, r in outcomes
                  if j.target.builtin and not ok(r)]
    users = [(j, r) for j, r in outcomes if not j.target.builtin]
    verified = [b.reproducer.verified for _, r in outcomes if not isinstance(r, str)
                for b in r.findings if b.reproducer]
    parts = []
    if seeded or correct:
        parts += [f"{len(found)}/{len(classes)} seeded bug classes found as expected",
                  f"{sum(ok(r) for _, r in correct)}/{len(correct)} correct-target campaigns as expected"]
    if users:
        with_findings = sum(1 for _, r in users if not isinstance(r, str) and r.findings)
        parts.append(f"{with_findings}/{len(users)} campaigns on your targets with findings")
    parts += [f"{sum(verified)}/{len(verified)} reproducers verified", f"{elapsed:.0f} s"]
    text = "summary: " + "; ".join(parts)
    if unexpected:
        text += f"\nnot as expected: {', '.join(unexpected)}"
    return {"text": text, "bug_classes_found": found, "bug_classes": classes,
            "unexpected": unexpected, "reproducers_verified": sum(verified),
            "reproducers": len(verified), "elapsed_s": round(elapsed, 1)}
