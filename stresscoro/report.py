"""What the faces hand out: exit codes, readable findings, SARIF 2.1.0 and markdown.

Everything here works on the JSON form of campaign results (CampaignResult.to_json()),
the form that crosses process boundaries (pytest-xdist workers, `--jobs`), so the CLI and
the pytest plugin write the same files from the same data. Imports stay light: the
pytest plugin loads this module only when a session has something to report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # what a shell reports after Ctrl-C
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command killed by SIGPIPE

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "stresscoroSignature/v1"


# -- one finding, readable ------------------------------------------------------------

def finding_lines(finding: dict) -> list[str]:
    """A finding (FoundBug.to_json()) as the lines a person reads: kind and op, the
    minimal schedule, the sanitizer's summary, the location, the broken rule and the
    reproducer files."""
    ops = finding.get("readable") or []
    lines = [f"{finding['kind']} {finding.get('where', '')}; minimal schedule, {len(ops)} op(s):"]
    lines += [f"{k:>3}  {text}" for k, text in enumerate(ops)]
    lines += [f"preempted: {text}" for text in finding.get("preempted") or []]
    if finding.get("summary"):
        lines.append(f"{finding['summary']}")
    if finding.get("location"):
        lines.append(f"at {finding['location']}")
    if finding.get("rule"):
        lines.append(f"broken rule: {finding['rule']}")
    if finding.get("preconditions"):
        lines.append("found under the declared preconditions: "
                     + ", ".join(finding["preconditions"]))
    if finding.get("first_example"):
        lines.append(f"first seen at example {finding['first_example']}")
    rep = finding.get("reproducer")
    if rep:
        status = "verified" if rep.get("verified") else "NOT verified: " + "; ".join(rep.get("notes") or [])
        lines.append(f"reproducers ({status}): {rep['cpp']}  {rep['python']}")
    return lines


# -- signatures -----------------------------------------------------------------------

_FRAME_WHERE = re.compile(r"^(?P<func>.*) (?P<file>[^ ]+?):(?P<line>\d+)(?::\d+)?$")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def split_frame(frame: str) -> tuple[str, str, int | None]:
    """("func", "file", line) of a symbolized frame; ("func", "", None) otherwise."""
    m = _FRAME_WHERE.match(frame.strip())
    if m is None:
        return frame.strip(), "", None
    return m.group("func"), m.group("file"), int(m.group("line"))


def library_frames(finding: dict) -> list[str]:
    """The finding's access-stack frames inside the library under test, symbolized ones
    only (module+offset frames of an unsymbolized report carry nothing stable)."""
    from .oracle import is_library_frame

    frames = finding.get("stacks", {}).get("access", [])
    return [f for f in frames if "+0x" not in f and not f.startswith("0x") and is_library_frame(f)]


def fingerprint(finding: dict) -> str:
    """A stable identity for a finding: the fingerprint of its crash signature
    (signature.py: kind plus library function names, no addresses, paths or lines), so
    it survives a rebuild, another checkout and unrelated edits. A finding with no
    library frame (a leak seen by the driver, an invariant, a hang) adds its location,
    line dropped, so that two such findings of one kind stay apart."""
    from .oracle import Finding
    from .signature import identity

    return identity(Finding(kind=finding["kind"], op_index=None, summary=finding.get("summary", ""),
                            location=finding.get("location", ""),
                            stacks={k: tuple(v) for k, v in finding.get("stacks", {}).items()}))


def unique_findings(results: Iterable[dict]) -> Iterator[tuple[dict, dict]]:
    """(result, finding) pairs, each finding once per target and sanitizer even when
    several campaigns (xdist workers, repeated runs) reported it; the shortest
    schedule wins."""
    best: dict[tuple[str, str, str], tuple[dict, dict]] = {}
    for res in results:
        for f in res.get("findings", []):
            key = (res["target"], res["sanitizer"], fingerprint(f))
            if key not in best or f.get("length", 0) < best[key][1].get("length", 0):
                best[key] = (res, f)
    yield from best.values()


# -- SARIF ------------------------------------------------------------------------------

_RULE_TEXT = {
    "heap-use-after-free": "A freed coroutine frame (or memory it owned) was used.",
    "double-free": "A coroutine frame or block was freed twice.",
    "leak": "A coroutine frame or block allocated by an operation was never freed.",
    "data-race": "Two threads accessed shared state without synchronisation.",
    "stack-overflow": "The stack overflowed (awaiting grows the stack).",
    "hang": "A schedule did not finish within its timeout.",
    "out-of-memory": "A schedule went over the worker's memory cap.",
    "undefined-behavior": "UndefinedBehaviorSanitizer reported undefined behaviour.",
}


def _rule_text(kind: str) -> str:
    if kind in _RULE_TEXT:
        return _RULE_TEXT[kind]
    if kind.startswith("invariant:"):
        return f"A lifetime invariant was broken ({kind.split(':', 1)[1]})."
    if kind.startswith("crash:"):
        return f"The worker crashed ({kind.split(':', 1)[1]})."
    return f"Sanitizer finding: {kind}."


def _artifact(path: str, root: Path) -> dict:
    p = Path(path)
    if not p.is_absolute():
        return {"uri": p.as_posix()}
    try:
        return {"uri": p.resolve().relative_to(root).as_posix(), "uriBaseId": "%SRCROOT%"}
    except ValueError:
        return {"uri": p.resolve().as_uri()}


def _first_location(result: dict, finding: dict, root: Path) -> dict:
    for frame in library_frames(finding):
        _, file, line = split_frame(frame)
        if file and line:
            return {"physicalLocation": {"artifactLocation": _artifact(file, root),
                                         "region": {"startLine": max(1, line)}},
                    "message": {"text": frame}}
    # No library frame (a leak, a hang, an invariant seen by the driver): the adapter
    # that describes the type is where the reader starts.
    return {"physicalLocation": {"artifactLocation": _artifact(result["adapter"], root),
                                 "region": {"startLine": 1}},
            "message": {"text": "the adapter of the type under test"}}


def _thread_flows(finding: dict) -> list[dict]:
    readable = finding.get("readable") or []
    ops = finding.get("ops") or []
    by_thread: dict[int, list[dict]] = {}
    for i, text in enumerate(readable):
        thread = ops[i].get("thread", 0) if i < len(ops) else 0
        by_thread.setdefault(thread, []).append({
            "location": {"message": {"text": f"op {i}: {text}"}},
            "executionOrder": i,
            "importance": "essential" if i == finding.get("op_index") else "important",
        })
    if not by_thread:
        by_thread[0] = [{"location": {"message": {"text": "the end-of-schedule drops"}},
                         "executionOrder": 0}]
    return [{"id": f"thread-{t}", "message": {"text": f"schedule thread {t}"}, "locations": locs}
            for t, locs in sorted(by_thread.items())]


def sarif(results: Iterable[dict], *, root: str | os.PathLike | None = None,
          tool_version: str = "") -> dict:
    """A SARIF 2.1.0 log of `results`: one rule per finding kind; per finding, the first
    library frame as location, a fingerprint, the schedule as a thread flow per
    schedule thread, and the reproducer files as related locations."""
    root = Path(root or os.getcwd()).resolve()
    rules: dict[str, int] = {}
    rule_list: list[dict] = []
    out = []
    for res, f in unique_findings(results):
        kind = f["kind"]
        if kind not in rules:
            rules[kind] = len(rule_list)
            rule_list.append({
                "id": kind,
                "name": "".join(w.capitalize() for w in re.split(r"[^a-zA-Z0-9]+", kind) if w),
                "shortDescription": {"text": _rule_text(kind)},
                "defaultConfiguration": {"level": "error"},
            })
        message = (f"{kind} in {res['target']} under {res['sanitizer']} {f.get('where', '')}: "
                   f"{f.get('rule', '')}. Minimal schedule: "
                   + "; ".join(f.get("readable") or []))
        related = []
        rep = f.get("reproducer") or {}
        for i, (key, what) in enumerate((("cpp", "C++ reproducer"), ("python", "pytest reproducer"),
                                          ("schedule", "schedule file")), 1):
            if rep.get(key):
                related.append({"id": i, "physicalLocation": {"artifactLocation": _artifact(rep[key], root)},
                                "message": {"text": what}})
        entry = {
            "ruleId": kind,
            "ruleIndex": rules[kind],
            "level": "error",
            "message": {"text": message},
            "locations": [_first_location(res, f, root)],
            "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f)},
            "codeFlows": [{"message": {"text": "the minimal schedule"},
                           "threadFlows": _thread_flows(f)}],
            "properties": {"target": res["target"], "sanitizer": res["sanitizer"],
                           "summary": f.get("summary", ""),
                           "verified": bool(rep.get("verified"))},
        }
        if related:
            entry["relatedLocations"] = related
        out.append(entry)
    driver = {"name": "stresscoro", "informationUri": "https://pypi.org/project/stresscoro/",
              "rules": rule_list}
    if tool_version:
        driver["version"] = tool_version
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION,
            "runs": [{"tool": {"driver": driver},
                      "originalUriBaseIds": {"%SRCROOT%": {"uri": root.as_uri() + "/"}},
                      "results": out}]}


# -- markdown ---------------------------------------------------------------------------

def markdown(results: list[dict], *, errors: Iterable[str] = ()) -> str:
    """A summary a CI job appends to its job summary: one row per campaign with its
    resources, then each finding once with its minimal schedule."""
    results = list(results)
    found = list(unique_findings(results))
    lines = [f"## stresscoro: {len(found)} finding(s) in {len(results)} campaign(s)", ""]
    if results:
        lines += ["| target | sanitizer | verdict | examples | shrink runs | seconds | examples/s "
                  "| worker CPU s | peak RSS MiB | crashes survived |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        totals = {"examples": 0, "shrink_runs": 0, "cpu": 0.0, "crashes": 0}
        for r in results:
            res = r.get("resources") or {}
            rate = r["examples"] / r["elapsed_s"] if r.get("elapsed_s") else 0.0
            lines.append(f"| {r['target']} | {r['sanitizer']} | {r.get('verdict', '')} | {r['examples']} "
                         f"| {r.get('shrink_runs', 0)} | {r.get('elapsed_s', 0):.1f} | {rate:.0f} "
                         f"| {res.get('worker_cpu_s', 0):.1f} | {res.get('peak_rss_mb', 0):.0f} "
                         f"| {res.get('crashes_survived', 0)} |")
            totals["examples"] += r["examples"]
            totals["shrink_runs"] += r.get("shrink_runs", 0)
            totals["cpu"] += res.get("worker_cpu_s", 0)
            totals["crashes"] += res.get("crashes_survived", 0)
        lines += ["", f"Total: {totals['examples']} examples, {totals['shrink_runs']} shrink runs, "
                  f"{totals['cpu']:.1f} worker CPU seconds, {totals['crashes']} crashes survived.", ""]
    for msg in errors:
        lines += [f"- **error**: {msg}"]
    for res, f in found:
        lines += [f"### {f['kind']} in {res['target']} ({res['sanitizer']})", "", "```text"]
        lines += finding_lines(f)
        lines += ["```", ""]
    return "\n".join(lines).rstrip() + "\n"
