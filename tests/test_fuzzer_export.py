"""export-fuzzer: the exported project builds outside the repository with its own
build.sh, libFuzzer finds the seeded bug, and the crash file comes back as a schedule
that `fuzz --fuzzer-input` shrinks to its minimal length with verified reproducers.
Skipped, saying why, only when clang or its libFuzzer runtime is missing (.ci/run
installs both)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from stresscoro import cli, targets
from stresscoro.explore import NativeProgram
from stresscoro.export import MISSING_CLANG, fuzzing_compiler
from stresscoro.minimize import shrink
from stresscoro.session import TargetSession


CLANG = fuzzing_compiler()
needs_clang = pytest.mark.skipif(CLANG is None, reason=MISSING_CLANG + "; .ci/run installs them")


@needs_clang
@pytest.mark.slow
def test_libfuzzer_finds_the_seeded_bug_and_fuzz_shrinks_the_crash_file(tmp_path):
    project = tmp_path / "copyable-fuzz"
    assert cli.main(["export-fuzzer", "copyable-task", "-o", str(project)]) == 0
    assert (project / ".clusterfuzzlite" / "project.yaml").read_text().startswith("language: c++")
    assert "base-builder" in (project / ".clusterfuzzlite" / "Dockerfile").read_text()
    # Built outside the repository by the ClusterFuzzLite build script, as a service would.
    env = {**os.environ, "CXX": CLANG, "OUT": str(tmp_path / "out")}
    built = subprocess.run([str(project / ".clusterfuzzlite" / "build.sh")], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    fuzzer = tmp_path / "out" / "copyable_task_fuzzer"
    assert fuzzer.exists()

    arts = tmp_path / "artifacts"
    arts.mkdir()
    ran = subprocess.run([str(fuzzer), "-runs=200000", "-seed=1", f"-artifact_prefix={arts}/"],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode != 0, "libFuzzer found nothing in 200,000 runs"
    assert "heap-use-after-free" in ran.stderr
    crash = next(arts.glob("crash-*"))

    assert cli.main(["replay", "--fuzzer-input", str(crash), "--target", "copyable-task"]) == 1
    out = tmp_path / "repro"
    report = tmp_path / "report.json"
    assert cli.main(["fuzz", "copyable-task", "--fuzzer-input", str(crash), "--out", str(out),
                     "--json", str(report)]) == 1
    (result,) = json.loads(report.read_text())["results"]
    (finding,) = result["findings"]
    assert finding["kind"] == "heap-use-after-free"
    assert finding["length"] == 2  # make, copy: the class's minimal schedule
    assert finding["reproducer"]["verified"] is True


def test_a_long_native_draw_with_a_finding_shrinks_to_the_minimal_schedule():
    """The shrinker `fuzz --fuzzer-input` and `explore` use, on a padded finding."""
    target = targets.get("copyable-task")
    program = NativeProgram(target, "none")
    with TargetSession(target, "asan", symbolize=False) as session:
        long = next(s for s in program.generate(1, 300, max_ops=12)
                    if len(s.ops) >= 8 and session.run(s).primary is not None)
        kind = session.run(long).primary.kind

        def fails(c):
            f = session.run(c).primary
            return f is not None and f.kind == kind

        small, runs = shrink(long, fails, session.factories, session.rules,
                             session.capabilities)
    assert kind == "heap-use-after-free"
    assert [o.name for o in small.ops] == ["make", "copy"], small.render()
    assert runs > 0


def test_fuzzer_input_errors_are_one_paragraph(tmp_path, capsys):
    assert cli.main(["replay", "--fuzzer-input", str(tmp_path / "nope")]) == 2
    assert "not a file" in capsys.readouterr().err
    crash = tmp_path / "crash-x"
    crash.write_bytes(b"\x01\x02")
    assert cli.main(["replay", "--fuzzer-input", str(crash)]) == 2
    assert "--target NAME or --adapter FILE" in capsys.readouterr().err
    assert cli.main(["fuzz", "--fuzzer-input", str(crash)]) == 2
    assert "exactly one target" in capsys.readouterr().err
    assert cli.main(["export-fuzzer", "-o", str(tmp_path / "x")]) == 2
    assert "one target" in capsys.readouterr().err
