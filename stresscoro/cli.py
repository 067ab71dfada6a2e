"""The `stresscoro` command: parse options, print results, choose the exit code."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from .report import EXIT_BROKEN_PIPE, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, EXIT_INTERRUPTED


class ScheduleFileError(Exception):
    """An input file (a schedule, a crash report) that cannot be used; the message says
    which file and what to do."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(message)
        self.label = label


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported as one paragraph on stderr and exit 2."""

    def error(self, message: str):
        usage = f" ({' '.join(self.format_usage().split())})" if self.prog == "stresscoro" else ""
        self.exit(EXIT_ERROR, f"stresscoro: usage error: {message}. Run '{self.prog} --help' "
                              f"for the options{usage}\n")


def _ranged(kind, low, high, unit: str = ""):
    """An argparse type: a number of `kind` within low..high, inclusive."""
    noun = "an integer" if kind is int else "a number"
    fmt = "," if kind is int else ",g"
    allowed = f"{noun} in {low:{fmt}}..{high:{fmt}}{unit}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if not low <= value <= high or value != value:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


MAX_EXAMPLES = 10_000_000
MAX_SCHEDULES = 10**12
DEFAULT_SCHEDULES = 1_000_000
MAX_JOBS = 64
TIMEOUT_RANGE_S = (0.1, 86_400.0)
MEMORY_RANGE_MB = (64, 1 << 20)
BUDGET_RANGE_S = (1.0, 30 * 86_400.0)
MAX_REPORT_BYTES = 64 << 20


def _limits_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=_ranged(float, *TIMEOUT_RANGE_S, " seconds"), default=10.0,
                   metavar="SECONDS", help="a schedule (and a reproducer run) that takes longer "
                   "is a hang (default 10)")
    p.add_argument("--memory-mb", type=_ranged(int, *MEMORY_RANGE_MB, " MiB"), default=4096,
                   metavar="N", help="a schedule (and a reproducer run) whose resident memory "
                   "passes N MiB is out-of-memory (default 4096)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="stresscoro",
        description="Property-based stress testing of C++20 coroutine ownership rules.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("targets", help="list the built-in targets")
    t.add_argument("--json", action="store_true", help="print the list as JSON")

    r = sub.add_parser("replay", help="run a saved schedule file once and report what it finds")
    r.add_argument("file", nargs="?", help="a schedule JSON file (format stresscoro-schedule)")
    r.add_argument("--fuzzer-input", metavar="FILE",
                   help="instead of a schedule file: a libFuzzer input (crash-* file) of a "
                        "fuzzer made by export-fuzzer, decoded into its schedule (needs "
                        "--target or --adapter)")
    _decode_options(r)
    r.add_argument("--target", help="run against this built-in target instead of the one the "
                   "file names (your own adapter: --adapter)")
    r.add_argument("--sanitizer", choices=("asan", "tsan", "ubsan", "none"),
                   help="default: the target's first declared sanitizer")
    r.add_argument("--compiler", help="C++ compiler (default g++, or $STRESSCORO_CXX)")
    _limits_options(r)
    r.add_argument("--json", metavar="PATH", help="write the JSON result to PATH, or - for stdout")

    f = sub.add_parser("fuzz", help="search targets for ownership bugs with Hypothesis")
    e = sub.add_parser("explore", help="search targets at native speed: schedules drawn and run "
                       "in process in batches, findings shrunk and reported as fuzz does")
    for sp in (f, e):
        sp.add_argument("targets", nargs="*", metavar="TARGET",
                        help="built-in target names or adapter .cpp paths (default: the built-in "
                             "suite)")
        sp.add_argument("--sanitizer", choices=("asan", "tsan", "ubsan", "none"),
                        help="run every target under this one (default: each target's own list)")
        sp.add_argument("--jobs", type=_ranged(int, 1, MAX_JOBS), default=1,
                        help="campaigns run in parallel (default 1)")
        _search_options(sp)
        sp.add_argument("--tsan-fence-annotations", action="store_true",
                        help="build with STRESSCORO_TSAN_FENCE_ANNOTATIONS so TSan can check a "
                             "target that annotates its fences (see stresscoro/tsan_fence.hpp)")
        sp.add_argument("--time-budget", type=_ranged(float, *BUDGET_RANGE_S, " seconds"), default=None,
                       metavar="SECONDS",
                       help="end each campaign within SECONDS, reports included, with what it "
                            "found so far (default: no limit; the example count decides)")
        sp.add_argument("--sarif", metavar="PATH", help="write the findings as SARIF 2.1.0 to PATH")
        sp.add_argument("--markdown", metavar="PATH",
                       help="write a markdown summary to PATH (for a CI job summary)")
        sp.add_argument("--schedules", type=_ranged(int, 1, MAX_SCHEDULES), default=None,
                        metavar="N", help="native engine: schedules per campaign (default "
                        f"{DEFAULT_SCHEDULES:,})")
        sp.add_argument("--seconds", type=_ranged(float, 0.1, 86_400.0, " seconds"), default=None,
                        help="native engine: stop a campaign's exploring after this long")
        sp.add_argument("--interleave", choices=("pct", "random", "exhaustive", "none"), default="pct",
                        help="native engine: how a schedule of two or more threads is preempted "
                             "inside its ops, at the target's atomics, fences and mutex calls "
                             "(default pct)")
        sp.add_argument("--depth", type=_ranged(int, 2, 8), default=2, metavar="D",
                        help="native engine, pct: D-1 preemptions a run (default 2)")
        sp.add_argument("--interleavings", type=_ranged(int, 1, 1000), default=1, metavar="R",
                        help="native engine, pct and random: runs with preemptions per schedule "
                             "(default 1)")
        sp.add_argument("--bound", type=_ranged(int, 1, 2), default=2, metavar="B",
                        help="native engine, exhaustive: at most B preemptions a run, every "
                             "choice of them when there are at most 256 (else pct) (default 2)")
        sp.add_argument("--fuzzer-input", metavar="FILE",
                        help="start from a libFuzzer input (crash-* file) of a fuzzer made by "
                             "export-fuzzer: decode it, shrink its finding and report it (one "
                             "TARGET or --adapter; --max-ops/--slots/--threads as the fuzzer was "
                             "built, else read from its stresscoro-fuzzer.json)")
    f.add_argument("--engine", choices=("hypothesis", "native"), default="hypothesis",
                   help="hypothesis (default): Hypothesis generates every schedule; native: "
                        "the `explore` engine")
    e.set_defaults(engine="native")

    rp = sub.add_parser("reproduce", help="search a target for the minimal schedule of the crash "
                        "in a sanitizer report")
    rp.add_argument("target", nargs="?", metavar="TARGET",
                    help="built-in target name or adapter .cpp path (or --adapter FILE)")
    rp.add_argument("--report", required=True, metavar="FILE",
                    help="the sanitizer report (ASan, LSan, TSan or UBSan output; log prefixes, "
                         "colour codes and other threads' lines are tolerated)")
    rp.add_argument("--sanitizer", choices=("asan", "tsan", "ubsan", "none"),
                    help="default: the sanitizer that wrote the report")
    _search_options(rp)

    sg = sub.add_parser("signature", help="print the crash signature parsed from a sanitizer report")
    sg.add_argument("file", help="the sanitizer report")
    sg.add_argument("--json", action="store_true", help="print the signature as JSON")

    x = sub.add_parser("export-fuzzer", help="write a libFuzzer / ClusterFuzzLite project for a target")
    x.add_argument("target", nargs="?", metavar="TARGET", help="a built-in target (or --adapter)")
    x.add_argument("-o", "--out", required=True, metavar="DIR", help="the project directory to write")
    x.add_argument("--compiler", help="C++ compiler used to list the adapter's headers (default g++)")
    _decode_options(x)
    for sp in (f, e, r, rp, x):
        _target_options(sp)
    return p


def _decode_options(p: argparse.ArgumentParser) -> None:
    """The generator settings a fuzzer input decodes with (replay, export-fuzzer)."""
    from .schedule import MAX_OPS, MAX_SLOTS, MAX_THREADS

    p.add_argument("--max-ops", type=_ranged(int, 1, MAX_OPS), default=None,
                   help="longest schedule a fuzzer input decodes to (default 12)")
    p.add_argument("--slots", type=_ranged(int, 1, MAX_SLOTS), default=None,
                   help="object slots (default 3)")
    p.add_argument("--threads", type=_ranged(int, 1, MAX_THREADS), default=None,
                   help="schedule threads (default 1)")


def _search_options(p: argparse.ArgumentParser) -> None:
    """Options of every campaign (fuzz, explore, reproduce)."""
    from .schedule import MAX_OPS, MAX_SLOTS, MAX_THREADS

    p.add_argument("--max-examples", type=_ranged(int, 1, MAX_EXAMPLES),
                   help="examples per campaign (default: the profile's)")
    p.add_argument("--seed", type=int, help="Hypothesis seed, for a reproducible search")
    p.add_argument("--profile", choices=("dev", "ci", "nightly"), default=None,
                   help="settings profile: dev 300, ci 1000, nightly 20000 examples "
                        "(default: $STRESSCORO_PROFILE, else ci when $CI is set, else dev)")
    p.add_argument("--json", metavar="PATH", help="write the JSON results to PATH, or - for stdout")
    p.add_argument("--out", default="stresscoro-out", metavar="DIR",
                   help="where reproducers are written (default ./stresscoro-out)")
    p.add_argument("--no-verify", action="store_true", help="write reproducers without re-running them")
    p.add_argument("--database", metavar="DIR",
                   help="Hypothesis example database directory, or 'none' "
                        "(default: Hypothesis's own, ./.hypothesis/examples)")
    p.add_argument("--compiler", help="C++ compiler (default g++, or $STRESSCORO_CXX)")
    _limits_options(p)
    p.add_argument("--max-ops", type=_ranged(int, 1, MAX_OPS), default=None,
                   help="longest schedule generated (default 12)")
    p.add_argument("--slots", type=_ranged(int, 1, MAX_SLOTS), default=None,
                   help="object slots per schedule (default 3)")
    p.add_argument("--threads", type=_ranged(int, 1, MAX_THREADS), default=None,
                   help="schedule threads (default: the target's threads metadata, else 2 under "
                        "tsan, else 1)")


def adapter_target(args, name: str | None = None):
    """The target described by --adapter, -I, --define and --cxxflags."""
    from .targets import from_adapter

    return from_adapter(args.adapter, name=name, include_dirs=tuple(args.include),
                        defines=tuple(args.define),
                        cxxflags=tuple(f for group in args.cxxflags for f in shlex.split(group)))


def _target_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("your own library")
    g.add_argument("--adapter", metavar="FILE",
                   help="an adapter .cpp describing your coroutine type (see 'Testing your own library' in README)")
    g.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                   help="include directory for your library's headers (repeatable)")
    g.add_argument("--define", "-D", action="append", default=[], metavar="NAME[=VALUE]",
                   help="preprocessor definition for the build (repeatable)")
    g.add_argument("--cxxflags", action="append", default=[], metavar="FLAGS",
                   help="extra compiler flags, shell-quoted (repeatable)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "targets":
            code = _targets(args)
        elif args.command == "replay":
            code = _replay(args)
        elif args.command in ("fuzz", "explore"):
            code = _fuzz(args)
        elif args.command == "export-fuzzer":
            code = _export_fuzzer(args)
        elif args.command == "reproduce":
            code = _reproduce(args)
        elif args.command == "signature":
            code = _signature(args)
        else:
            code = EXIT_ERROR
        sys.stdout.flush()  # a reader that went away shows up here, not at interpreter exit
        if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            # Stopped by a signal, and every result is written: a further signal would
            # meet the default action while the interpreter finalizes and replace our
            # exit code by a death by that signal.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return code
    except BrokenPipeError:
        # `stresscoro targets --json | head -1`: the reader has all it wanted; exit
        # quietly, and keep Python from failing again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("stresscoro: interrupted; workers stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - every known failure becomes exit 2 below
        return _usage_error(e)


def _usage_error(e: Exception) -> int:
    from .build import BuildError
    from .export import InvalidFuzzerInput
    from .schedule import InvalidSchedule
    from .targets import InvalidTarget, UnknownTarget
    from .worker import WorkerError

    if isinstance(e, ScheduleFileError):
        print(f"stresscoro: {e.label}: {e}", file=sys.stderr)
        return EXIT_ERROR
    known = (BuildError, InvalidSchedule, InvalidTarget, UnknownTarget, WorkerError, OSError,
             InvalidFuzzerInput)
    if not isinstance(e, known):
        raise e
    label = {
        "InvalidSchedule": "invalid schedule",
        "UnknownTarget": "unknown target",
        "InvalidTarget": "invalid target",
        "CompilerNotFound": "compiler not found",
        "BuildError": "build failed",
        "WorkerError": "worker failed to start",
        "OutputError": "cannot write output",
        "InvalidFuzzerInput": "invalid fuzzer input",
    }.get(type(e).__name__, "error")
    print(f"stresscoro: {label}: {e}", file=sys.stderr)
    return EXIT_ERROR


def _targets(args) -> int:
    from .targets import builtin_targets

    targets = builtin_targets()
    if args.json:
        json.dump([t.to_json() for t in targets], sys.stdout, indent=2)
        print()
        return EXIT_CLEAN
    width = max(len(t.name) for t in targets)
    for t in targets:
        what = f"seeded {t.bug_class} -> {t.expected}" if t.bug_class else f"correct ({t.expected})"
        print(f"{t.name:<{width}}  {t.kind:<11} {','.join(t.sanitizers):<14} {what}")
        if t.summary:
            print(f"{'':<{width}}  {t.summary}")
    return EXIT_CLEAN


def _replay(args) -> int:
    from . import schedule as sched
    from .targets import builtin

    if (args.file is None) == (args.fuzzer_input is None):
        raise ScheduleFileError("usage error", (
            "replay takes a schedule FILE or --fuzzer-input FILE (exactly one of them)"))
    if args.fuzzer_input:
        return _replay_fuzzer_input(args)
    if args.max_ops or args.slots or args.threads:
        raise ScheduleFileError("usage error", (
            "--max-ops, --slots and --threads go with --fuzzer-input; a schedule file "
            "says its own"))
    try:
        s = sched.load(args.file)
    except sched.InvalidSchedule as e:
        raise ScheduleFileError("invalid schedule", (
            f"{args.file}: {e}. Fix the file; a schedule looks like {{\"format\": "
            f"\"{sched.FORMAT}\", \"version\": {sched.VERSION}, \"target\": \"task\", "
            f"\"ops\": [{{\"op\": \"make\", \"slot\": 0}}, {{\"op\": \"drop\", \"slot\": 0}}]}}"
        )) from None
    except FileNotFoundError:
        raise ScheduleFileError("schedule file not found", (
            f"{args.file!r} does not exist; check the path (a relative path starts at "
            "the current directory)")) from None
    except (OSError, UnicodeDecodeError) as e:
        if isinstance(e, IsADirectoryError) or os.path.isdir(args.file):
            raise ScheduleFileError("cannot read the schedule", (
                f"{args.file!r} is a directory; pass a JSON schedule file")) from None
        raise ScheduleFileError("cannot read the schedule", (
            f"{args.file!r}: {e}; pass a readable UTF-8 JSON schedule file")) from None
    if args.adapter:
        target = adapter_target(args, name=s.target)
    else:
        target = builtin(args.target or s.target,
                         "--target" if args.target else f"the schedule file's target ({args.file})")
    return _replay_schedule(args, s, target)


def _replay_fuzzer_input(args) -> int:
    from .explore import NativeProgram
    from .export import InvalidFuzzerInput, decode_settings, fuzzer_input_file
    from .targets import builtin

    path = fuzzer_input_file(args.fuzzer_input)
    if args.adapter:
        target = adapter_target(args)
    elif args.target:
        target = builtin(args.target, "--target")
    else:
        raise InvalidFuzzerInput(
            f"--fuzzer-input {args.fuzzer_input!r}: name the target the fuzzer was built for "
            "with --target NAME or --adapter FILE")
    s = NativeProgram(target, "none", compiler=args.compiler).decode_file(
        path, **decode_settings(args))
    return _replay_schedule(args, s, target)


def _replay_schedule(args, s, target) -> int:
    from .outputs import check_file, write_json
    from . import supervise
    from .session import TargetSession

    sanitizer = args.sanitizer or target.sanitizers[0]
    if args.json:
        check_file("--json", args.json)
    t0 = time.perf_counter()
    with supervise.Stop() as stop:
        try:
            with stop.interruptible(), TargetSession(
                    target, sanitizer, compiler=args.compiler, timeout_s=args.timeout,
                    memory_mb=args.memory_mb) as session:
                outcome = session.run(s)
                names = session.factory_names
        except KeyboardInterrupt:
            print(f"stresscoro: interrupted ({stop.name or 'SIGINT'}); workers stopped",
                  file=sys.stderr)
            return stop.exit_code
    elapsed = time.perf_counter() - t0
    result = {
        "target": target.name,
        "sanitizer": sanitizer,
        "examples": 1,
        "elapsed_s": round(elapsed, 3),
        "findings": [
            {**f.to_json(), "length": len(s.ops), "ops": [o.to_json() for o in s.ops],
             "preemptions": [p.to_json() for p in s.preemptions],
             "preempted": f.preemption_lines(s, names), "reproducer": None}
            for f in outcome.findings
        ],
    }
    if args.json:
        write_json({"results": [result]}, args.json)
    if args.json != "-":
        _print_outcome(s, target.name, sanitizer, outcome, names)
    return EXIT_FINDINGS if outcome.findings else EXIT_CLEAN


def _print_outcome(s, target: str, sanitizer: str, outcome, names: list[str]) -> None:
    n = len(outcome.findings)
    print(f"{target} under {sanitizer}: {'clean' if not n else f'{n} finding' + 's' * (n > 1)}")
    print(f"  schedule ({len(s.ops)} ops):")
    for i, line in enumerate(s.render(names)):
        print(f"    {i:>3}  {line}")
    for line in s.render_preemptions(names):
        print(f"  {line}")
    if outcome.findings:
        for line in outcome.findings[0].preemption_lines(s, names):
            print(f"  preempted: {line}")
    for f in outcome.findings:
        print(f"  {f.kind} {f.where(s, names)}")
        print(f"    {f.summary}")
        if f.location:
            print(f"    at {f.location}")


def _export_fuzzer(args) -> int:
    from .export import MISSING_CLANG, export, fuzzing_compiler
    from .targets import builtin

    if bool(args.target) == bool(args.adapter):
        raise ScheduleFileError("usage error", (
            "export-fuzzer takes one target: a built-in TARGET name or --adapter FILE"))
    target = adapter_target(args) if args.adapter else builtin(args.target, "TARGET")
    build_sh = export(target, Path(args.out), compiler=args.compiler,
                      max_ops=args.max_ops or 12, slots=args.slots or 3, threads=args.threads or 1)
    print(f"stresscoro: wrote the fuzzer project for {target.name} to {args.out}/")
    print(f"  build:  {build_sh}   (uses $CXX $CXXFLAGS $LIB_FUZZING_ENGINE; default clang++ with "
          "libFuzzer and ASan)")
    print(f"  replay: stresscoro replay --fuzzer-input crash-... "
          f"{'--adapter ' + args.adapter if args.adapter else '--target ' + target.name}")
    if fuzzing_compiler() is None:
        print(f"stresscoro: warning: {MISSING_CLANG}", file=sys.stderr)
    return EXIT_CLEAN


def _read_report(path: str):
    from .signature import ReportError, parse

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(MAX_REPORT_BYTES + 1)
        if len(text) > MAX_REPORT_BYTES:
            raise ScheduleFileError("report too large", (
                f"{path!r} is larger than {MAX_REPORT_BYTES >> 20} MiB; cut the log down to "
                "the sanitizer report (from its '==...==ERROR' or 'WARNING:' line to SUMMARY)"))
    except IsADirectoryError:
        raise ScheduleFileError("cannot read the report", f"{path!r} is a directory; pass the "
                                "file that holds the sanitizer report") from None
    except FileNotFoundError:
        raise ScheduleFileError("report file not found", (
            f"{path!r} does not exist; check the path (a relative path starts at the current "
            "directory)")) from None
    except OSError as e:
        raise ScheduleFileError("cannot read the report", f"{path!r}: {e}") from None
    try:
        return parse(text)
    except ReportError as e:
        raise ScheduleFileError("invalid report", f"{path}: {e}") from None


def _signature(args) -> int:
    report = _read_report(args.file)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print("\n".join(report.describe()))
    return EXIT_CLEAN


def _reproduce(args) -> int:
    from . import supervise
    from .fuzz import database_for, profile_for
    from .outputs import check_dir, check_file, write_json
    from .reproduce import reproduce
    from .targets import get

    report = _read_report(args.report)
    if args.adapter:
        target = adapter_target(args)
    elif args.target:
        target = get(args.target)
    else:
        raise ScheduleFileError("no target", (
            "reproduce needs the library the report came from: a built-in target name, "
            "an adapter .cpp path, or --adapter FILE (with -I DIR for its headers)"))
    out_dir = check_dir("--out", args.out)
    if args.json:
        check_file("--json", args.json)
    options = dict(max_examples=args.max_examples, seed=args.seed,
                   profile=profile_for(args.profile), database=database_for(args.database),
                   out_dir=out_dir, verify=not args.no_verify, compiler=args.compiler,
                   timeout_s=args.timeout, memory_mb=args.memory_mb)
    for name in ("max_ops", "slots", "threads"):
        if getattr(args, name):
            options[name] = getattr(args, name)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json == "-" else print
    say(f"stresscoro reproduce: {report.kind} from {args.report}; fingerprint {report.fingerprint()}")
    supervise.clean_stale()
    with supervise.Stop() as stop:
        try:
            with stop.interruptible():
                result = reproduce(report, target, args.sanitizer, progress=lambda line: print(
                    f"  ... {line}", file=sys.stderr, flush=True), **options)
        except KeyboardInterrupt:
            print(f"stresscoro: interrupted ({stop.name or 'SIGINT'}); workers stopped",
                  file=sys.stderr)
            return stop.exit_code
    _print_reproduction(say, result)
    if args.json:
        write_json({"report": report.to_json(), "results": [result.to_json()]}, args.json)
    return EXIT_FINDINGS if result.match else EXIT_CLEAN


def _print_reproduction(say, result) -> None:
    c = result.campaign
    head = f"{c.target.name}/{c.sanitizer}: {c.examples} examples in {c.elapsed_s:.1f} s"
    match = result.match
    if match is None:
        say(f"{head}: NO MATCH for the report's {result.report.kind}.")
        closest = result.candidates[0] if result.candidates else None
        if closest is None:
            say("    the search found nothing at all on this target.")
        else:
            say(f"    closest finding (similarity {closest.comparison.similarity:.2f}; the shortest "
                "schedule seen, not shrunk, since it does not match):")
            _print_candidate(say, closest, "schedule")
            for d in closest.comparison.differences() or ["the kinds differ"]:
                say(f"    differs: {d}")
        say("    try:")
        for tip in result.suggestions():
            say(f"      - {tip}")
    else:
        say(f"{head}: REPRODUCED (similarity {match.comparison.similarity:.2f}, decided by the "
            f"{match.comparison.basis} {'stack' if match.comparison.basis != 'kind only' else ''})".rstrip())
        _print_candidate(say, match, "minimal schedule")
        rep = match.bug.reproducer
        if rep is not None:
            status = "verified" if rep.verified else "NOT verified: " + "; ".join(rep.notes)
            say(f"    reproducers ({status}): {rep.cpp}  {rep.python}")
        check = result.reproducer_check
        if check is not None:
            say(f"    the C++ reproducer's own report {'matches' if check.matches else 'does NOT match'} "
                f"the given report (similarity {check.similarity:.2f})")
    others = result.others if match else result.candidates[1:]
    if others:
        say(f"other findings ({len(others)}; recorded, not the reported crash):")
        for o in others:
            f = o.bug.finding
            say(f"    {f.kind} {f.where(o.bug.schedule, o.bug.factory_names)}, "
                f"{len(o.bug.schedule.ops)} op(s), similarity {o.comparison.similarity:.2f}")


def _print_candidate(say, cand, label: str) -> None:
    for line in cand.bug.schedule_lines(label):
        say(f"    {line}")
    say(f"    {'stack':<8}{'#':>2}  {'report':<44}  finding")
    for row in cand.comparison.stacks:
        mark = "same" if row.same else ("-" if not row.comparable else "DIFFERS")
        for i in range(max(len(row.report), len(row.finding), 1)):
            left = row.report[i].name if i < len(row.report) else ""
            right = row.finding[i].name if i < len(row.finding) else ""
            label = row.name if i == 0 else ""
            say(f"    {label:<8}{i:>2}  {left:<44}  {right}" + (f"   [{mark}]" if i == 0 else ""))


def _fuzz(args) -> int:
    from .fuzz import run_suite

    return run_suite(args, [adapter_target(args)] if args.adapter else [])


if __name__ == "__main__":
    sys.exit(main())
