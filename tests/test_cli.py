"""The `stresscoro` console script, run for real in a subprocess: output shapes and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stresscoro.targets import BUG_CLASSES

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SANITIZERS = {"asan", "tsan", "ubsan", "none"}
FINDING_KIND = re.compile(
    r"double-free|heap-use-after-free|leak|data-race|stack-overflow|hang"
    r"|invariant:[a-z0-9_-]+|crash:[A-Z0-9]+")


def _command() -> list[str]:
    """The installed console script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("stresscoro")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "stresscoro.cli"]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*_command(), *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def write_schedule(path: Path, target: str, ops: list[dict], **top) -> Path:
    path.write_text(json.dumps({"format": "stresscoro-schedule", "version": 1, "target": target,
                                **top, "ops": ops}))
    return path


def assert_usage_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, nothing on stdout, one paragraph on stderr naming `words`, no traceback."""
    err = proc.stderr
    assert proc.returncode == EXIT_ERROR, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err, err
    assert err.startswith("stresscoro: "), err
    assert "\n\n" not in err.strip(), err
    assert proc.stdout == "", proc.stdout
    for w in words:
        assert w in err, f"{w!r} not in stderr:\n{err}"
    return err


# -- targets ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listed() -> list[dict]:
    proc = run("targets", "--json")
    assert proc.returncode == EXIT_CLEAN, proc.stderr
    assert proc.stderr == ""
    data = json.loads(proc.stdout)
    assert isinstance(data, list) and data
    return data


def test_targets_json_has_the_design_fields(listed):
    for t in listed:
        assert {"name", "kind", "bug_class", "expected", "sanitizers"} <= set(t), t
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["kind"], str) and t["kind"]
        assert t["bug_class"] is None or t["bug_class"] in BUG_CLASSES, t
        assert isinstance(t["sanitizers"], list) and t["sanitizers"], t
        assert set(t["sanitizers"]) <= SANITIZERS, t
    names = [t["name"] for t in listed]
    assert len(names) == len(set(names)), "target names are unique"


def test_bug_class_slugs_are_the_design_list():
    # Pinned here so a renamed slug in targets.py breaks a test, not users' scripts.
    assert set(BUG_CLASSES) == {
        "copy-owning-task", "move-keeps-source", "leak-unfinished", "final-never-destroy",
        "copy-assign-self", "relaxed-refcount", "dangling-parameter", "nested-resume",
        "awaiter-overwritten", "eager-final-frees", "combinator-dangling-temporaries",
        "resume-inside-await-suspend", "move-assign-leaks-old", "check-then-act-release",
        "lost-wakeup", "when-all-counter"}


def test_every_bug_class_is_seeded_exactly_once(listed):
    seeded = [t["bug_class"] for t in listed if t["bug_class"] is not None]
    assert sorted(seeded) == sorted(BUG_CLASSES)


def test_seeded_targets_expect_a_finding_and_name_a_correct_twin(listed):
    by_name = {t["name"]: t for t in listed}
    for t in listed:
        if t["bug_class"] is None:
            assert t["expected"] in ("clean", "unverifiable"), t
            continue
        assert FINDING_KIND.fullmatch(t["expected"]), t
        twin = by_name.get(t["twin"])
        assert twin is not None, f"{t['name']}: twin {t['twin']!r} is not a target"
        assert twin["bug_class"] is None, f"{t['name']}: twin {twin['name']} is seeded too"
        assert twin["expected"] == "clean", twin


def test_the_race_target_runs_under_tsan(listed):
    (race,) = [t for t in listed if t["bug_class"] == "relaxed-refcount"]
    assert "tsan" in race["sanitizers"]


def test_targets_human_output_lists_every_name(listed):
    proc = run("targets")
    assert proc.returncode == EXIT_CLEAN, proc.stderr
    first_words = {line.split()[0] for line in proc.stdout.splitlines() if line[:1].strip()}
    assert first_words == {t["name"] for t in listed}


def test_targets_into_a_closed_pipe_exits_quietly():
    # `stresscoro targets --json | head -1`, made deterministic: the reader is gone
    # before the command writes anything.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([*_command(), "targets", "--json"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.stderr == "", f"noise on stderr:\n{proc.stderr}"
    assert proc.returncode in (EXIT_CLEAN, 141)  # 141: what a shell shows after SIGPIPE


def test_targets_piped_into_head():
    script = " ".join(map(repr, _command()))
    proc = subprocess.run(["bash", "-c", f"{script} targets --json | head -1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout == "[\n"
    assert proc.stderr == ""


# -- usage errors ------------------------------------------------------------------


def test_no_command_is_a_usage_error():
    proc = run()
    assert proc.returncode == EXIT_ERROR
    assert "usage: stresscoro" in proc.stderr


def test_replay_of_bad_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "stresscoro-schedule", "ops": [}\n')
    assert_usage_error(run("replay", bad), "invalid schedule", str(bad), "not valid JSON",
                       "line 1", "Fix the file")


def test_replay_of_an_unknown_op_names_the_op_index_and_field(tmp_path):
    path = write_schedule(tmp_path / "unknown-op.json", "task",
                          [{"op": "make", "slot": 0}, {"op": "resume", "slot": 0},
                           {"op": "frobnicate", "slot": 0}])
    err = assert_usage_error(run("replay", path), "invalid schedule", "unknown-op.json",
                             "op 2", "'op'", "'frobnicate'", "expected one of", "resume")
    assert err.count("\n") == 1  # one line


def test_replay_of_a_schedule_using_another_threads_slot(tmp_path):
    path = write_schedule(tmp_path / "s.json", "task",
                          [{"op": "make", "slot": 0}, {"op": "resume", "slot": 0, "thread": 1}])
    assert_usage_error(run("replay", path), "op 1", "held by thread 0", "send it first")


def test_replay_of_a_missing_file(tmp_path):
    missing = tmp_path / "no-such-schedule.json"
    assert_usage_error(run("replay", missing), "no-such-schedule.json", "does not exist",
                       "check the path")


def test_replay_of_a_directory(tmp_path):
    assert_usage_error(run("replay", tmp_path), str(tmp_path), "JSON schedule file")


def test_replay_of_an_unknown_target_lists_the_built_in_ones(tmp_path, listed):
    path = write_schedule(tmp_path / "s.json", "no-such-target", [{"op": "make", "slot": 0}])
    err = assert_usage_error(run("replay", path), "unknown target", "'no-such-target'",
                             "Built-in targets", "adapter")
    for t in listed:
        assert t["name"] in err


def test_replay_with_an_op_the_target_does_not_support(tmp_path):
    # task is move-only: a copy is not in its vocabulary.
    path = write_schedule(tmp_path / "s.json", "task",
                          [{"op": "make", "slot": 0}, {"op": "copy", "src": 0, "dst": 1}])
    assert_usage_error(run("replay", path), "op 1", "does not support copy", "it supports",
                       "move")


def test_replay_with_a_factory_argument_out_of_range(tmp_path):
    path = write_schedule(tmp_path / "s.json", "task",
                          [{"op": "make", "slot": 0, "factory": 999}])
    assert_usage_error(run("replay", path), "op 0", "'factory'", "999", "factories")


BROKEN_ADAPTER = """\
// stresscoro: name=broken
// stresscoro: kind=task
#include <coroutine>

struct stresscoro_target {
    using object = int
    static object make(int, int) { return 0; }
};
"""


def test_replay_with_an_adapter_that_does_not_compile(tmp_path):
    adapter = tmp_path / "broken_adapter.cpp"
    adapter.write_text(BROKEN_ADAPTER)
    path = write_schedule(tmp_path / "s.json", "task", [{"op": "make", "slot": 0}])
    err = assert_usage_error(
        run("replay", path, "--adapter", adapter, env={"STRESSCORO_CACHE_DIR": str(tmp_path / "c")}),
        "build failed", "The compiler said", "error:")
    # The compiler's own diagnostic, pointing into the user's file at the broken line.
    assert re.search(r"broken_adapter\.cpp:6:\d+: error:", err), err


def test_replay_with_a_missing_compiler_path(tmp_path):
    path = write_schedule(tmp_path / "s.json", "task", [{"op": "make", "slot": 0}])
    assert_usage_error(run("replay", path, "--compiler", "/nonexistent/g++"),
                       "compiler not found", "/nonexistent/g++", "install", "STRESSCORO_CXX")


def test_replay_with_a_missing_compiler_from_the_environment(tmp_path):
    path = write_schedule(tmp_path / "s.json", "task", [{"op": "make", "slot": 0}])
    assert_usage_error(run("replay", path, env={"STRESSCORO_CXX": "no-such-compiler-xyz"}),
                       "compiler not found", "no-such-compiler-xyz", "install", "STRESSCORO_CXX")


# -- replay that runs ------------------------------------------------------------------


def _results(proc: subprocess.CompletedProcess) -> dict:
    data = json.loads(proc.stdout)
    assert set(data) == {"results"}
    (result,) = data["results"]
    assert {"target", "sanitizer", "examples", "elapsed_s", "findings"} <= set(result)
    assert isinstance(result["examples"], int) and result["examples"] >= 1
    assert isinstance(result["elapsed_s"], (int, float)) and result["elapsed_s"] >= 0
    assert isinstance(result["findings"], list)
    for f in result["findings"]:
        assert {"kind", "length", "ops", "reproducer"} <= set(f), f
        assert FINDING_KIND.fullmatch(f["kind"]), f
        assert f["length"] == len(f["ops"])
        r = f["reproducer"]
        assert r is None or {"cpp", "python", "verified"} <= set(r), r
    return result


def test_replay_of_a_correct_target_is_clean(tmp_path):
    ops = [{"op": "make", "slot": 0}, {"op": "resume", "slot": 0}, {"op": "drop", "slot": 0}]
    path = write_schedule(tmp_path / "task.json", "task", ops)
    proc = run("replay", path, "--json", "-")
    assert proc.returncode == EXIT_CLEAN, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    result = _results(proc)
    assert (result["target"], result["sanitizer"], result["findings"]) == ("task", "asan", [])


def test_replay_of_a_seeded_bug_finds_it(tmp_path):
    ops = [{"op": "make", "slot": 0}]
    path = write_schedule(tmp_path / "leaky.json", "leaky-task", ops)
    proc = run("replay", path, "--json", "-")
    assert proc.returncode == EXIT_FINDINGS, proc.stdout + proc.stderr
    result = _results(proc)
    assert (result["target"], result["sanitizer"]) == ("leaky-task", "asan")
    kinds = [f["kind"] for f in result["findings"]]
    assert kinds == ["leak"]
    (finding,) = result["findings"]
    assert finding["length"] == 1
    assert finding["ops"] == [{"op": "make", "slot": 0, "factory": 0, "arg": 0}]


def test_replay_writes_json_to_a_file_and_prints_the_outcome(tmp_path):
    path = write_schedule(tmp_path / "leaky.json", "leaky-task", [{"op": "make", "slot": 0}])
    out = tmp_path / "result.json"
    proc = run("replay", path, "--json", out)
    assert proc.returncode == EXIT_FINDINGS, proc.stderr
    assert "leaky-task under asan: 1 finding" in proc.stdout
    assert "leak at op 0" in proc.stdout
    data = json.loads(out.read_text())
    assert [f["kind"] for f in data["results"][0]["findings"]] == ["leak"]


def test_replay_against_another_target(tmp_path):
    # The file names leaky-task; --target runs its correct twin instead.
    path = write_schedule(tmp_path / "leaky.json", "leaky-task", [{"op": "make", "slot": 0}])
    proc = run("replay", path, "--target", "task", "--json", "-")
    assert proc.returncode == EXIT_CLEAN, proc.stdout + proc.stderr
    assert _results(proc)["target"] == "task"


def test_send_to_the_same_thread_on_one_thread_is_clean(tmp_path):
    path = write_schedule(tmp_path / "self-send.json", "task",
                          [{"op": "make", "slot": 0}, {"op": "send", "slot": 0, "to": 0}])
    proc = run("replay", path, "--json", "-")
    assert proc.returncode == EXIT_CLEAN, proc.stdout + proc.stderr


# -- bad options and metadata: exit 2 before any work, one paragraph naming the option ----


@pytest.mark.parametrize("args, option, allowed", [
    (("fuzz", "--max-examples", "0"), "--max-examples", "1..10,000,000"),
    (("fuzz", "--max-examples", "-1"), "--max-examples", "1..10,000,000"),
    (("fuzz", "--max-ops", "-5"), "--max-ops", "1..4,096"),
    (("fuzz", "--slots", "100"), "--slots", "1..16"),
    (("fuzz", "--threads", "100"), "--threads", "1..8"),
    (("fuzz", "--jobs", "0"), "--jobs", "1..64"),
    (("fuzz", "--jobs", "-3"), "--jobs", "1..64"),
    (("fuzz", "--timeout", "0"), "--timeout", "0.1..86,400 seconds"),
    (("fuzz", "--timeout", "nan"), "--timeout", "0.1..86,400 seconds"),
    (("fuzz", "--memory-mb", "10"), "--memory-mb", "64..1,048,576 MiB"),
    (("replay", "x.json", "--timeout", "-1"), "--timeout", "0.1..86,400 seconds"),
    (("replay", "x.json", "--memory-mb", "many"), "--memory-mb", "64..1,048,576 MiB"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_a_bad_option_is_a_usage_error_naming_it(args, option, allowed):
    value = args[-1]
    assert_usage_error(run(*args), option, repr(value), allowed)


def test_adapter_metadata_with_an_unknown_sanitizer_stops_before_any_campaign(tmp_path):
    adapter = tmp_path / "msan_adapter.cpp"
    adapter.write_text("// stresscoro: name=msan-adapter\n// stresscoro: sanitizers=asan,msan\n"
                       "#include <stresscoro/adapter.hpp>\n")
    # The built-in target comes first: nothing may run before the adapter is refused.
    assert_usage_error(run("fuzz", "task", "--adapter", adapter, "--out", tmp_path / "out"),
                       "sanitizers='asan,msan'", "'msan'", "asan, tsan, ubsan, none")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("value", ["0", "9", "two"])
def test_adapter_metadata_with_a_bad_threads_value_stops_before_any_campaign(tmp_path, value):
    adapter = tmp_path / "threads_adapter.cpp"
    adapter.write_text(f"// stresscoro: name=threads-adapter\n// stresscoro: threads={value}\n"
                       "#include <stresscoro/adapter.hpp>\n")
    assert_usage_error(run("fuzz", "--adapter", adapter, "--out", tmp_path / "out"),
                       f"threads={value!r}", "1 to 8")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_deeply_nested_schedule_file_is_refused(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 1100 + "]" * 1100)
    assert_usage_error(run("replay", path), "invalid schedule", "nested too deeply")


def test_a_schedule_file_above_the_size_limit_is_refused_before_parsing(tmp_path):
    from stresscoro.schedule import MAX_FILE_BYTES

    path = tmp_path / "huge.json"
    with open(path, "w") as f:
        f.write('{"format": "stresscoro-schedule", "version": 1, "target": "task", "ops": [')
        f.write('{"op": "make", "slot": 0},' * (MAX_FILE_BYTES // 20))
        f.write('{"op": "drop", "slot": 0}]}')
    assert_usage_error(run("replay", path), "invalid schedule", f"{MAX_FILE_BYTES:,} bytes")


def test_a_schedule_target_that_is_a_path_is_not_compiled(tmp_path):
    adapter = tmp_path / "evil.cpp"
    adapter.write_text("#error this file must never be compiled\n")
    path = write_schedule(tmp_path / "s.json", str(adapter), [{"op": "make", "slot": 0}])
    err = assert_usage_error(run("replay", path), "unknown target", repr(str(adapter)), "--adapter")
    assert "must never be compiled" not in err


def test_a_negative_slot_is_named_as_written(tmp_path):
    path = write_schedule(tmp_path / "s.json", "task", [{"op": "make", "slot": -1}])
    assert_usage_error(run("replay", path), "op 0", "field 'slot'=-1")


@pytest.mark.parametrize("option", ["--json", "--out"])
def test_an_unwritable_output_stops_before_any_campaign(tmp_path, option):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = blocker / "inside"  # a path under a regular file: no one can create it
    other = {"--json": ("--out", tmp_path / "out"), "--out": ("--json", tmp_path / "r.json")}
    proc = run("fuzz", "copyable-task", option, bad, *other[option], "--max-examples", "50")
    assert_usage_error(proc, "cannot write output", option, str(bad))
    assert not (tmp_path / "r.json").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
