"""Fuzzing in CI: the pytest plugin on a user's project under pytest-xdist, SARIF and
markdown reports, an unrelated suite left alone, time budgets, campaigns that go on past
their first findings, and a run killed in the middle."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest
from hypothesis.database import DirectoryBasedExampleDatabase

from stresscoro import cli, targets
from stresscoro.report import fingerprint
from stresscoro.runner import run_campaign

TESTS = Path(__file__).resolve().parent
CI_PROJECT = TESTS / "data" / "ci_project"
SARIF_SCHEMA = TESTS / "data" / "sarif-schema-2.1.0.json"
TWO_BUGS = TESTS / "adapters" / "two_bugs.cpp"
MINIMAL_COPY = re.compile(r"^\s*0  make\(0, factory=answer, arg=\d+\)\n\s*1  copy\(0, 1\)$", re.M)


def _project(tmp_path: Path, extra: str = "") -> Path:
    proj = tmp_path / "proj"
    shutil.copytree(CI_PROJECT, proj)
    if extra:
        with open(proj / "test_fuzz.py", "a", encoding="utf-8") as f:
            f.write(extra)
    return proj


def _pytest(proj: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=proj, capture_output=True, text=True, timeout=900,
                          env=env or dict(os.environ))


def _junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def _failure_text(case: ET.Element) -> str:
    failure = case.find("failure")
    return "" if failure is None else (failure.get("message") or "") + "\n" + (failure.text or "")


# -- the plugin on a user's project ------------------------------------------------------

def test_plugin_under_xdist_fails_the_buggy_adapter_with_its_minimal_schedule(tmp_path):
    # The buggy adapter twice, so two xdist workers find the same bug.
    proj = _project(tmp_path, 'test_tiny_buggy_again = fuzz_tests("buggy_adapter.cpp", '
                              'include_dirs=["include"])\n')
    out = tmp_path / "out"
    proc = _pytest(proj, "-n", "2", "--stresscoro-max-examples=200",
                   f"--stresscoro-database={tmp_path / 'db'}",
                   f"--stresscoro-sarif={out / 'findings.sarif'}",
                   f"--stresscoro-markdown={out / 'summary.md'}",
                   f"--junitxml={out / 'junit.xml'}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cases = _junit_cases(out / "junit.xml")
    assert set(cases) == {"test_tiny_buggy[asan]", "test_tiny_buggy_again[asan]",
                          "test_tiny_clean[asan]", "test_ordinary"}, proc.stdout
    for name in ("test_tiny_buggy[asan]", "test_tiny_buggy_again[asan]"):
        text = _failure_text(cases[name])
        assert "heap-use-after-free" in text and "minimal schedule, 2 op(s)" in text, text
        assert MINIMAL_COPY.search(text), text
        assert "broken rule: a frame is destroyed exactly once" in text
        assert re.search(r"reproducers \(verified\): \S+\.cpp  \S+\.py", text), text
    for name in ("test_tiny_clean[asan]", "test_ordinary"):
        assert cases[name].find("failure") is None and cases[name].find("error") is None, proc.stdout

    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads((out / "findings.sarif").read_text())
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(doc)
    results = doc["runs"][0]["results"]
    prints = [r["partialFingerprints"]["stresscoroSignature/v1"] for r in results]
    assert results and len(prints) == len(set(prints)), prints
    flows = [[loc["location"]["message"]["text"] for loc in r["codeFlows"][0]["threadFlows"][0]["locations"]]
             for r in results]
    copy_only = [f for f in flows if len(f) == 2 and f[1] == "op 1: copy(0, 1)"]
    assert len(copy_only) == 1, flows  # found by both workers, reported once
    rules = {rule["id"] for rule in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} == rules
    for r in results:
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] and loc["region"]["startLine"] >= 1
        assert {x["message"]["text"] for x in r["relatedLocations"]} >= {"C++ reproducer", "pytest reproducer"}

    md = (out / "summary.md").read_text()
    assert md.count("\n### ") == len(results), md
    assert md.count("| tiny-buggy | asan | findings |") == 2 and "| tiny-clean | asan | clean |" in md
    assert md.count("in the end-of-schedule drops; minimal schedule, 2 op(s):") == 1, md


@pytest.mark.stresscoro("adapters/two_bugs.cpp", sanitizer="asan")
def test_the_fixture_form_hands_a_custom_property_an_open_session(stresscoro_session):
    from stresscoro.schedule import Schedule, make, op

    assert stresscoro_session.target.name == "two-bugs" and stresscoro_session.sanitizer == "asan"
    assert stresscoro_session.run(Schedule("two-bugs", [make(0), op("move", 0, 1)])).ok
    copied = stresscoro_session.run(Schedule("two-bugs", [make(0), op("copy", 0, 1)]))
    assert copied.primary is not None and copied.primary.kind == "heap-use-after-free"


def test_fingerprints_ignore_addresses_directories_and_lines():
    base = {"kind": "heap-use-after-free", "location": "f() a.hpp:3",
            "stacks": {"access": ["std::__n4861::coroutine_handle<x>::destroy() /usr/include/c++/12/coroutine:244",
                                  "lib::task::~task() /home/a/lib/task.hpp:38",
                                  "run() /home/a/lib/run.cpp:10"]}}
    moved = {**base, "stacks": {"access": ["std::__n4861::coroutine_handle<x>::destroy() /usr/include/c++/12/coroutine:244",
                                           "lib::task::~task() /ci/build/lib/task.hpp:41",
                                           "run() /ci/build/lib/run.cpp:12"]}}
    other = {**base, "stacks": {"access": ["lib::task::resume() /home/a/lib/task.hpp:42"]}}
    assert fingerprint(base) == fingerprint(moved)
    assert fingerprint(base) != fingerprint(other)
    assert fingerprint(base) != fingerprint({**base, "kind": "double-free"})


TRIVIAL_SUITE = '''
import sys

import pytest
from hypothesis import given, settings, strategies as st


def test_passes():
    assert True


def test_fails():
    assert 1 == 2


@pytest.mark.skip(reason="on purpose")
def test_skipped():
    pass


@pytest.mark.parametrize("n", [1, 2])
def test_parametrized(n):
    assert n < 2


@given(st.integers())
def test_hypothesis(n):
    assert n < 10**6


def test_environment():
    print("SETTINGS", settings().max_examples, settings().deadline, type(settings().database).__name__)
    heavy = sorted(m for m in sys.modules if m in ("cffi", "_cffi_backend", "psutil")
                   or m.startswith("stresscoro.") and m != "stresscoro.pytest_plugin")
    print("HEAVY", heavy)
'''
TRIVIAL_CONFTEST = '''
from pathlib import Path


def pytest_sessionfinish(session):
    Path("plugin.txt").write_text(str(session.config.pluginmanager.has_plugin("stresscoro")))
'''


def test_an_unrelated_suite_runs_the_same_with_and_without_the_plugin(tmp_path):
    (tmp_path / "test_trivial.py").write_text(TRIVIAL_SUITE)
    (tmp_path / "conftest.py").write_text(TRIVIAL_CONFTEST)
    runs = {}
    for label, extra in (("with", ()), ("without", ("-p", "no:stresscoro"))):
        proc = _pytest(tmp_path, "-q", "-s", "-p", "no:randomly", "--junitxml", f"{label}.xml", *extra)
        text = re.sub(r"\d+\.\d+s", "T", proc.stdout)
        text = re.sub(r"^.*generated xml file.*$", "", text, flags=re.M)
        outcomes = {name: [child.tag for child in case] for name, case in _junit_cases(tmp_path / f"{label}.xml").items()}
        runs[label] = (proc.returncode, text, outcomes, (tmp_path / "plugin.txt").read_text())
    assert runs["with"][3] == "True" and runs["without"][3] == "False"  # the comparison is real
    assert runs["with"][:3] == runs["without"][:3], (runs["with"][1], runs["without"][1])
    assert "HEAVY []" in runs["with"][1]
    assert runs["with"][0] == 1


def test_loading_the_plugin_imports_nothing_heavy():
    code = ("import sys, stresscoro.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('stresscoro', 'cffi', '_cffi_backend', 'psutil', 'hypothesis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['stresscoro', 'stresscoro.pytest_plugin']", out


def test_reproducer_directories_are_not_collected(tmp_path):
    from stresscoro import outputs, pytest_plugin

    assert pytest_plugin.REPRODUCER_DIR_MARKER == outputs.REPRODUCER_DIR_MARKER
    out = tmp_path / "stresscoro-out"
    out.mkdir()
    (out / "test_reproducer.py").write_text("def test_fails_until_fixed():\n    assert False\n")
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    assert _pytest(tmp_path, "-q").returncode == 1  # an ordinary directory is collected
    outputs.mark_reproducer_dir(out)
    proc = _pytest(tmp_path, "-q")
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout


def test_plugin_options_reject_bad_values_in_one_sentence(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    proc = _pytest(tmp_path, "--stresscoro-budget", "-5")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--stresscoro-budget (ini stresscoro_budget) is '-5'; expected a positive number of seconds" in proc.stderr
    (tmp_path / "pytest.ini").write_text("[pytest]\nstresscoro_sanitizers = asan,msan\n")
    proc = _pytest(tmp_path)
    assert proc.returncode == 4 and "stresscoro_sanitizers" in proc.stderr and "'asan,msan'" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- budgets and searching on ----------------------------------------------------------------

def test_a_budget_ends_the_campaign_on_time_with_both_bugs_of_a_two_bug_target(tmp_path):
    db_dir = tmp_path / "db"
    t0 = time.perf_counter()
    result = run_campaign(targets.from_adapter(TWO_BUGS), "asan", max_examples=10**6, budget_s=20,
                          database=DirectoryBasedExampleDatabase(db_dir), out_dir=tmp_path / "out")
    wall = time.perf_counter() - t0
    assert wall <= 23, f"a 20 s budget ended after {wall:.1f} s"
    assert result.examples < 10**6  # the budget, not the example count, ended it
    where = {b.finding.location for b in result.findings}
    assert any("task<true>::~task" in w for w in where), where  # bug 1: the copy that shares the frame
    assert any(w.startswith("count_a") for w in where), where  # bug 2: the dangling view
    for bug in result.findings:
        assert bug.reproducer.schedule.exists() and bug.reproducer.cpp.exists()
        assert bug.reproducer.verified or bug.reproducer.notes
    saved = [p for p in db_dir.rglob("*") if p.is_file()]
    assert saved, "no failure was saved to the example database"


def test_a_campaign_searches_on_past_its_findings_and_counts_shrinks_apart():
    result = run_campaign(targets.get("copyable-task"), "asan", seed=5, database=None,
                          max_examples=150, out_dir=None)
    assert result.findings and result.findings[0].first_example < 75
    assert result.examples >= 150  # the whole example count was spent after the first finding
    assert result.shrink_runs > 0
    assert result.resources["runs"] == result.examples + result.shrink_runs
    assert result.resources["crashes_survived"] > 0 and result.resources["worker_cpu_s"] > 0


def test_cli_writes_sarif_and_markdown_and_takes_a_time_budget(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    proc = subprocess.run([sys.executable, "-m", "stresscoro.cli", "fuzz", "copyable-task", "--seed", "1",
                           "--max-examples", "60", "--time-budget", "60", "--no-verify",
                           "--sarif", "f.sarif", "--markdown", "f.md", "--json", "f.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "f.sarif").read_text())
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(doc)
    data = json.loads((tmp_path / "f.json").read_text())["results"][0]
    assert len(doc["runs"][0]["results"]) == len(data["findings"]) > 0
    assert data["examples"] >= 60 and "shrink_runs" in data
    md = (tmp_path / "f.md").read_text()
    assert "| copyable-task | asan | findings |" in md and md.count("\n### ") == len(data["findings"])


# -- a run killed in the middle ------------------------------------------------------------------

def _saved(db_dir: Path) -> list[Path]:
    """Files in an example database that a running campaign may be changing."""
    try:
        return [p for p in db_dir.rglob("*") if p.is_file()]
    except FileNotFoundError:  # a key directory removed while we walked it
        return []


def _tagged(tag: str) -> list[psutil.Process]:
    """Live processes started by the run that carries `tag` in its environment."""
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("STRESSCORO_TEST_TAG") == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


def _describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_killed_run_leaves_no_process_and_replays_its_failures_first(tmp_path, sig):
    from hypothesis.database import choices_from_bytes

    proj = _project(tmp_path)
    db_dir = tmp_path / "db"
    tag = uuid.uuid4().hex
    env = dict(os.environ, STRESSCORO_TEST_TAG=tag)
    log = open(tmp_path / "killed.log", "w")
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                            "--stresscoro-max-examples=1000000", f"--stresscoro-database={db_dir}"],
                           cwd=proj, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        # Mid-campaign: a failure saved, and sanitized workers of both campaigns running.
        while not (_saved(db_dir) and len(_tagged(tag)) >= 6):
            assert run.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.5)
        os.kill(run.pid, sig)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        log.close()
    left = _tagged(tag)
    for _ in range(20):
        if not left:
            break
        time.sleep(0.5)
        left = _tagged(tag)
    assert not left, _describe(left)

    # Every saved entry is whole: a Hypothesis choice sequence that decodes.
    db = DirectoryBasedExampleDatabase(db_dir)
    values = [p for p in db_dir.rglob("*") if p.is_file() and p.parent.name != db._metakeys_hash]
    assert values
    for p in values:
        assert choices_from_bytes(p.read_bytes()) is not None, p

    # Option values joined with '=': pytest reads a lone path after an option it does not
    # know yet as a test path, which moves the rootdir, the test ids and the database keys.
    _pytest(proj, "-k", "buggy", "--stresscoro-max-examples=20",
            f"--stresscoro-database={db_dir}", f"--junitxml={tmp_path / 'again.xml'}")
    text = _failure_text(_junit_cases(tmp_path / "again.xml")["test_tiny_buggy[asan]"])
    assert "first seen at example 1\n" in text + "\n", text


def test_the_plugin_runs_what_explore_found_as_its_first_example(tmp_path):
    """explore keeps its minimal schedules under the key `fuzz` uses; the plugin's test
    (keyed by its test id) takes them over from there, so on the same database its first
    example is explore's finding. The control: the same run on an empty database."""
    proj = _project(tmp_path)
    db = tmp_path / "db"
    code = cli.main(["explore", "--adapter", str(proj / "buggy_adapter.cpp"), "-I", str(proj / "include"),
                     "--sanitizer", "asan", "--seed", "1", "--schedules", "20000", "--no-verify",
                     "--database", str(db), "--out", str(tmp_path / "explore-out"),
                     "--json", str(tmp_path / "explore.json")])
    assert code == 1, (tmp_path / "explore.json").read_text()

    def first_seen(database: Path) -> str:
        xml = tmp_path / f"{database.name}.xml"
        _pytest(proj, "-k", "buggy", "--stresscoro-max-examples=20", "--stresscoro-seed=3",
                f"--stresscoro-database={database}", f"--junitxml={xml}")
        text = _failure_text(_junit_cases(xml)["test_tiny_buggy[asan]"])
        return re.search(r"first seen at example (\d+)", text).group(1)

    assert first_seen(tmp_path / "empty") != "1"
    assert first_seen(db) == "1"


# -- sharing failures between machines ------------------------------------------------------

DEVELOPER_CONFTEST = '''
import os

from hypothesis import settings
from hypothesis.database import (DirectoryBasedExampleDatabase, MultiplexedDatabase,
                                 ReadOnlyDatabase)

# docs/ci.md's recipe, with a directory standing in for GitHubArtifactDatabase:
# read what CI found, write only locally.
shared = DirectoryBasedExampleDatabase(os.environ["CI_SHARED_DB"])
local = DirectoryBasedExampleDatabase(os.environ["LOCAL_DB"])
settings.register_profile("developer", database=MultiplexedDatabase(local, ReadOnlyDatabase(shared)))
settings.load_profile("developer")
'''


@pytest.mark.slow
def test_a_developer_replays_ci_failures_through_a_read_only_shared_database(tmp_path):
    shared, local = tmp_path / "ci-db", tmp_path / "local-db"
    ci = _project(tmp_path / "ci")
    _pytest(ci, "-k", "buggy", "--stresscoro-max-examples=40", f"--stresscoro-database={shared}")
    before = sorted((p.relative_to(shared), p.read_bytes()) for p in shared.rglob("*") if p.is_file())
    assert before, "CI saved nothing to its database"

    dev = _project(tmp_path / "dev")
    (dev / "conftest.py").write_text(DEVELOPER_CONFTEST)
    env = dict(os.environ, CI_SHARED_DB=str(shared), LOCAL_DB=str(local))
    _pytest(dev, "-k", "buggy", "--stresscoro-max-examples=5", f"--junitxml={tmp_path / 'dev.xml'}", env=env)
    text = _failure_text(_junit_cases(tmp_path / "dev.xml")["test_tiny_buggy[asan]"])
    assert "first seen at example 1\n" in text + "\n", text  # CI's failure, replayed first
    after = sorted((p.relative_to(shared), p.read_bytes()) for p in shared.rglob("*") if p.is_file())
    assert after == before  # the shared database was only read
    assert any(p.is_file() for p in local.rglob("*"))  # the developer's own failures stay local
