"""A user's own library, the way a newcomer tests it (README: "Testing your own library").

- examples/minicoro, copied outside the repository, fuzzed through the console script:
  its seeded move-assignment bug is found and verified; the fixed build is clean.
- The op set comes from the object type's traits plus the adapter's optional members:
  a move-only, a copy-only (deleted move constructor) and a regular type each get
  exactly their ops, and generated schedules use nothing else.
- A user header that does not compile is a build error (exit 2) whose message shows the
  compiler's error and the adapter line that included the header.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stresscoro import targets
from stresscoro.session import TargetSession
from stresscoro.strategies import schedules_for

REPO = Path(__file__).resolve().parent.parent
MINICORO = REPO / "examples" / "minicoro"
ADAPTERS = Path(__file__).resolve().parent / "adapters"


def _stresscoro(*args, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("stresscoro")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "stresscoro.cli"]
    env = dict(os.environ)
    # The campaign size is the dev profile's, wherever the tests run (CI sets $CI).
    env["STRESSCORO_PROFILE"] = "dev"
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def _copy_minicoro(tmp_path: Path) -> Path:
    """examples/minicoro in a directory of its own, outside the repository."""
    lib = tmp_path / "minicoro"
    shutil.copytree(MINICORO, lib, ignore=shutil.ignore_patterns("stresscoro-out", ".hypothesis"))
    assert REPO not in lib.resolve().parents
    return lib


def _fuzz_minicoro(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    lib = _copy_minicoro(tmp_path)
    proc = _stresscoro("fuzz", "--adapter", lib / "adapter.cpp", "-I", lib / "include",
                       "--seed", "1", "--json", "-", "--out", tmp_path / "out", *extra,
                       cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc, json.loads(proc.stdout)


def test_minicoro_move_assignment_bug_is_found_and_verified(tmp_path):
    proc, report = _fuzz_minicoro(tmp_path)
    assert proc.returncode == 1, proc.stderr
    [result] = report["results"]
    assert result["target"] == "minicoro-shared-job"
    assert result["sanitizer"] == "asan"
    uafs = [f for f in result["findings"] if f["kind"] == "heap-use-after-free"]
    assert uafs, [f["kind"] for f in result["findings"]]
    # make, make, dst = std::move(src): the stolen frame is released, the old one kept.
    # The destination needs no frame of its own for the stolen one to be released, so
    # make, move, move_assign is as short; which one the shrinker reaches depends on the
    # search.
    shortest = min(uafs, key=lambda f: f["length"])
    assert shortest["length"] == 3, shortest["readable"]
    ops = [o["op"] for o in shortest["ops"]]
    assert ops in (["make", "make", "move_assign"], ["make", "move", "move_assign"]), shortest["readable"]
    assert shortest["rule"] == "a frame is destroyed exactly once, by its last owner"
    assert "shared_job" in shortest["location"]
    rep = shortest["reproducer"]
    assert rep["verified"] is True, rep
    for key in ("cpp", "python"):
        path = Path(rep[key])
        assert path.is_file() and tmp_path in path.parents, path
    # The C++ reproducer's first line is a build command that works from anywhere.
    build = Path(rep["cpp"]).read_text().splitlines()[0]
    assert build.startswith("// build: ") and str(tmp_path / "minicoro" / "include") in build


def test_minicoro_fixed_build_is_clean(tmp_path):
    proc, report = _fuzz_minicoro(tmp_path, "--define", "MINICORO_FIXED=1")
    assert proc.returncode == 0, proc.stderr
    [result] = report["results"]
    assert result["findings"] == []
    assert result["examples"] >= 100
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- op sets from type traits ----------------------------------------------------------

ALWAYS = {"make", "drop", "send"}
EXPECTED_OPS = {
    # copy deleted; resume and awaitable declared by the adapter (await: replay of version 1
    # files; probe: the generated op)
    "traits_move_only.cpp": ALWAYS | {"move", "move_assign", "swap", "resume", "await", "probe"},
    # move constructor and move assignment deleted (so no std::swap); touch declared
    "traits_copy_only.cpp": ALWAYS | {"copy", "copy_assign", "touch"},
    # everything from the type; the adapter declares no resume, touch or awaitable
    "traits_regular.cpp": ALWAYS | {"copy", "copy_assign", "move", "move_assign", "swap"},
}


@pytest.fixture(scope="module", params=sorted(EXPECTED_OPS))
def traits_session(request):
    with TargetSession(targets.from_adapter(ADAPTERS / request.param), "asan") as session:
        yield request.param, session


def test_op_set_comes_from_type_traits_and_adapter_members(traits_session):
    name, session = traits_session
    assert session.capabilities == EXPECTED_OPS[name]


def test_generated_schedules_use_only_the_target_ops(traits_session):
    name, session = traits_session
    caps = session.capabilities
    seen: set[str] = set()
    schedules = st.sampled_from([1, 2]).flatmap(lambda t: schedules_for(session, threads=t))

    @settings(max_examples=200, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(schedules)
    def check(schedule):
        used = {o.name for o in schedule.ops}
        assert used <= caps, (used - caps, schedule.render())
        seen.update(used)

    check()
    # Generation really exercises what the type offers (send needs two threads); the
    # never-freed probe `await` is replayed from version 1 files, `probe` generated instead.
    assert seen == caps - {"await"}, caps - seen


def test_each_type_runs_its_generated_schedules_clean(traits_session):
    """All three types are correct, so every schedule runs clean; for the copy-only one
    this shows the driver constructs a made object in place from make()'s prvalue
    (guaranteed elision), never moving it."""
    name, session = traits_session

    @settings(max_examples=100, derandomize=True, database=None, deadline=None)
    @given(schedules_for(session))
    def runs_clean(schedule):
        outcome = session.run(schedule)
        assert outcome.ok, outcome.describe(schedule)

    runs_clean()


# --- a header that does not compile ----------------------------------------------------

def test_header_that_does_not_compile_is_a_build_error_naming_the_include(tmp_path):
    inc = tmp_path / "include" / "mylib"
    inc.mkdir(parents=True)
    (inc / "broken.hpp").write_text(
        "#pragma once\n"
        "namespace mylib {\n"
        "struct job { int id }  // missing ';' twice\n"
        "}\n")
    adapter_lines = [
        "// stresscoro: name=broken-header",
        "#include <stresscoro/adapter.hpp>",
        "#include <mylib/broken.hpp>",
        "struct stresscoro_target {",
        "    using object = int;",
        '    static constexpr stresscoro::factory factories[] = {{"zero", 0, 0}};',
        "    static object make(int, int) { return 0; }",
        "};",
    ]
    adapter = tmp_path / "adapter.cpp"
    adapter.write_text("\n".join(adapter_lines) + "\n")
    include_line = adapter_lines.index("#include <mylib/broken.hpp>") + 1

    proc = _stresscoro("fuzz", "--adapter", adapter, "-I", tmp_path / "include", "--seed", "1",
                       cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "BuildError" in out or "build failed" in out, out
    assert f"In file included from {adapter}:{include_line}" in out, out
    assert "broken.hpp:3:" in out and "error:" in out, out
    assert "expected" in out and "';'" in out.replace("‘", "'").replace("’", "'"), out
