"""`reproduce` end to end: sanitizer reports of the seeded bugs, made by building their C++
reproducers another way (tests/crash_reports.py), lead back to a schedule with the same
signature and a verified reproducer; on a target with two bugs, each report leads to its
own bug; a noisy log parses to the clean report's signature."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from stresscoro import schedule as sched
from stresscoro import signature as sig
from stresscoro import targets
from stresscoro.reproduce import reproduce
from stresscoro.schedule import Schedule, make, op

from conftest import SCHEDULES, TESTS
from crash_reports import report_built_elsewhere, reproducer_for, timestamp
from test_cli import EXIT_CLEAN, EXIT_FINDINGS, run

# Seeded target -> the sanitizer its report comes from (DESIGN.md's detectors).
SEEDED = {"copyable-task": "asan", "move-keeps-source-task": "asan", "leaky-task": "asan",
          "final-never-task": "asan", "self-assign-shared-task": "asan",
          "dangling-view-task": "asan", "nested-chain-task": "asan", "relaxed-shared-task": "tsan"}
TWOBUGS = TESTS.parent / "examples" / "twobugs"
TWOBUGS_INCLUDE = TWOBUGS / "include"
# The two bugs of the example, each with its minimal schedule.
BUG_SCHEDULES = {"sharing-copy": (make(0), op("copy", 0, 1)), "final-frees": (make(0), op("resume", 0))}


def twobugs_target(*defines: str) -> targets.Target:
    return targets.from_adapter(TWOBUGS / "adapter.cpp", include_dirs=(str(TWOBUGS_INCLUDE),),
                                defines=defines)


class _Reports:
    """reports(key) -> (clean report text, prefixed report text), made once per module."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._made: dict[str, tuple[str, str]] = {}

    def __call__(self, key: str) -> tuple[str, str]:
        if key not in self._made:
            if key in SEEDED:
                target, sanitizer = targets.get(key), SEEDED[key]
                schedule = sched.load(str(SCHEDULES / f"{key}.json"))
            else:
                target, sanitizer = twobugs_target(), "asan"
                schedule = Schedule(target.name, BUG_SCHEDULES[key])
            work = self._tmp.mktemp(f"report-{key}")
            cpp = reproducer_for(schedule, target, sanitizer, work / "fuzz-out")
            clean = report_built_elsewhere(cpp, work, sanitizer)
            # The same program's report again, as a CI log writes it.
            prefixed = "".join(f"{timestamp(i)} ci-runner[4242]: {line}\n"
                               for i, line in enumerate(clean.splitlines()))
            self._made[key] = (clean, prefixed)
        return self._made[key]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return _Reports(tmp_path_factory)


def _noisy(clean: str) -> str:
    """The report as a busy service logs it: a prefix with a timestamp and thread id on
    every line, colour codes, and another thread's lines between the report's own,
    stack frames included."""
    out = []
    for i, line in enumerate(clean.splitlines()):
        coloured = re.sub(r"(ERROR: \w+Sanitizer|WARNING: ThreadSanitizer|SUMMARY)",
                          "\x1b[1m\x1b[31m\\1\x1b[0m", line)
        coloured = re.sub(r"^(\s*#\d+ )", "\x1b[34m\\1\x1b[0m", coloured)
        out.append(f"{timestamp(2 * i)} app[311] tid 4242: {coloured}")
        if i % 3 == 1:
            out.append(f"{timestamp(2 * i + 1)} app[311] tid 4251: request {i} served in 0.{i % 10} ms")
    return "\n".join(out) + "\n"


# -- parsing real reports ----------------------------------------------------------------

@pytest.mark.parametrize("key", ["copyable-task", "relaxed-shared-task"])
def test_a_noisy_log_parses_to_the_signature_of_the_clean_report(reports, key):
    clean, prefixed = reports(key)
    expected = sig.parse(clean)
    assert expected.crash_state, expected.describe()
    assert sig.parse(prefixed) == expected
    assert sig.parse(_noisy(clean)) == expected


def test_dedup_tokens_and_a_second_report_after_the_first_change_nothing(reports):
    clean, _ = reports("copyable-task")
    expected = sig.parse(clean)
    lines = clean.splitlines()
    tokens = [f"{line}\nDEDUP_TOKEN: lib::a--lib::b" if line.strip() == "" else line for line in lines]
    other, _ = reports("final-never-task")
    assert sig.parse("\n".join(tokens) + "\n" + other) == expected


def test_the_signature_command_prints_what_was_understood(reports, tmp_path):
    _, prefixed = reports("copyable-task")
    path = tmp_path / "nightly.log"
    path.write_text(prefixed)
    proc = run("signature", path)
    assert proc.returncode == EXIT_CLEAN, proc.stderr
    assert "kind: heap-use-after-free (asan)" in proc.stdout
    assert re.search(r"free stack:\n\s+0  stresscoro::targets::task::reset\s+task\.hpp:104\n"
                     r"\s+1  stresscoro::targets::task::~task", proc.stdout), proc.stdout
    data = json.loads(run("signature", path, "--json").stdout)
    assert data["fingerprint"] == sig.parse(prefixed).fingerprint()
    assert "0x" not in data["fingerprint"] and "/" not in data["fingerprint"]


# -- reproducing --------------------------------------------------------------------------

def _reproduce(report_text: str, target, tmp_path, **kw):
    return reproduce(sig.parse(report_text), target, seed=1, database=None,
                     out_dir=tmp_path / "out", **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SEEDED))
def test_a_seeded_bugs_report_built_another_way_is_reproduced(reports, tmp_path, name):
    _, prefixed = reports(name)
    result = _reproduce(prefixed, targets.get(name), tmp_path)
    match = result.match
    assert match is not None, [c.comparison for c in result.candidates]
    assert match.bug.reproducer is not None and match.bug.reproducer.verified, match.bug.reproducer
    # The reproducer's own report has the given report's signature, not just its kind.
    assert result.reproducer_check is not None and result.reproducer_check.matches
    minimal = sched.load(str(SCHEDULES / f"{name}.json"))
    assert len(match.bug.schedule.ops) <= len(minimal.ops), match.bug.schedule.render()


@pytest.mark.parametrize("bug, other", [("final-frees", "sharing-copy"), ("sharing-copy", "final-frees")])
def test_on_a_target_with_two_bugs_each_report_leads_to_its_own_bug(reports, tmp_path, bug, other):
    _, prefixed = reports(bug)
    # Who freed the frame first tells the two bugs apart.
    assert not sig.same_stack(sig.parse(prefixed).stacks["free"], sig.parse(reports(other)[1]).stacks["free"])
    result = _reproduce(prefixed, twobugs_target(), tmp_path)
    assert result.match is not None
    assert [o.name for o in result.match.bug.schedule.ops] == [o.name for o in BUG_SCHEDULES[bug]]
    assert result.match.bug.reproducer.verified


def _cli_reproduce(reports, tmp_path, *extra):
    """`stresscoro reproduce` on the report of the example's second bug."""
    path = tmp_path / "crash.log"
    path.write_text(reports("final-frees")[1])
    return run("reproduce", "--report", path, "--adapter", TWOBUGS / "adapter.cpp",
               "-I", TWOBUGS_INCLUDE, "--seed", "1", "--database", "none",
               "--out", tmp_path / "out", *extra, cwd=tmp_path)


def test_the_cli_reproduces_the_second_bug_and_says_what_else_it_saw(reports, tmp_path):
    proc = _cli_reproduce(reports, tmp_path, "--json", tmp_path / "r.json")
    assert proc.returncode == EXIT_FINDINGS, proc.stdout + proc.stderr
    out = proc.stdout
    assert "REPRODUCED" in out and "decided by the free stack" in out
    assert re.search(r"0  make\(0, factory=answer, arg=\d+\)\n\s+1  resume\(0\)", out), out
    assert re.search(r"free\s+0  value_task|free\s+0  answer", out) or "twobugs::lazy::start" in out, out
    assert "reproducers (verified)" in out
    assert "the C++ reproducer's own report matches the given report" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["report"]["kind"] == "heap-use-after-free"
    (result,) = data["results"]
    assert result["reproduced"] is True and 0 < result["similarity"] <= 1
    first = result["findings"][0]
    assert first["matches"] and first["length"] == 2 and first["reproducer"]["verified"]
    assert first["signature"]["fingerprint"].startswith("heap-use-after-free|")


def test_no_match_says_so_shows_the_closest_and_what_to_try(reports, tmp_path):
    proc = _cli_reproduce(reports, tmp_path, "--define", "TWOBUGS_FIX_FINAL=1", "--max-examples", "150")
    assert proc.returncode == EXIT_CLEAN, proc.stdout + proc.stderr
    out = proc.stdout
    assert "NO MATCH for the report's heap-use-after-free" in out
    assert "closest finding" in out and re.search(r"\d+  copy\(\d, \d\)", out), out
    assert "differs: free stack: report" in out
    assert "try:" in out and "--max-examples 2000" in out
    assert not list((tmp_path / "out").glob("*.cpp")), "reproducers written for a finding that does not match"


def test_ubsan_reports_parse_with_their_stack_and_without_one(tmp_path):
    src = tmp_path / "ub.cpp"
    src.write_text("#include <climits>\n"
                   "namespace lib { int bump(int x) { return x + 1; } }\n"
                   "int main(int argc, char**) { return lib::bump(INT_MAX - 1 + argc) > 0; }\n")
    exe = tmp_path / "ub"
    subprocess.run(["g++", "-std=c++20", "-O1", "-g", "-fsanitize=undefined", str(src), "-o", str(exe)],
                   check=True)
    env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS")}
    plain = subprocess.run([exe], capture_output=True, text=True, env=env).stderr
    stacked = subprocess.run([exe], capture_output=True, text=True,
                             env={**env, "UBSAN_OPTIONS": "print_stacktrace=1"}).stderr
    with_stack = sig.parse(stacked)
    assert with_stack.kind == "undefined-behavior"
    assert [f.name for f in with_stack.stacks["access"]] == ["lib::bump"]
    without = sig.parse(plain)
    assert without.kind == "undefined-behavior" and not without.crash_state
    assert any("print_stacktrace=1" in n for n in without.notes)
    assert sig.compare(with_stack, without).basis == "kind only"
