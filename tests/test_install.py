"""A real, non-editable install into a fresh venv works away from the checkout.

Proves the wheel carries everything at run time: the Python package, the strategies
(as stresscoro.strategies, never a top-level `strategies`), and the native sources a
build compiles (found through the installed package, not the checkout).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stresscoro import targets

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# Not part of what a build from a clean checkout sees: local state and build output.
# Building from a copy keeps setuptools' in-tree build/ (whose stale files would end up
# in the wheel) out of the checkout and out of this test.
_IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info",
                                 "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis",
                                 "stresscoro-out", ".mypy_cache", ".ruff_cache")
# Run-time sources per install location: checkout dir -> package dir in site-packages.
_LAYOUT = {"stresscoro": "stresscoro", "strategies": "stresscoro/strategies",
           "native": "stresscoro/_native"}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def _run(cmd, *, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(**env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh venv with stresscoro pip-installed (not editable) from the checkout."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE, symlinks=True)
    venv = base / "venv"
    proc = _run([sys.executable, "-m", "venv", venv], cwd=base)
    assert proc.returncode == 0, proc.stderr
    bin_dir = venv / "bin"
    proc = _run([bin_dir / "python", "-m", "pip", "install", "--disable-pip-version-check",
                 "--no-input", src], cwd=base, timeout=600)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    proc = _run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=base)
    assert proc.returncode == 0, proc.stderr
    site = Path(proc.stdout.strip())
    work = base / "elsewhere"  # outside the checkout and outside the copy built from
    work.mkdir()
    return {"venv": venv, "bin": bin_dir, "site": site, "work": work, "base": base, "src": src}


def test_installed_package_is_not_the_checkout(installed):
    code = ("import stresscoro, stresscoro.build as b; "
            "print(stresscoro.__file__); print(b.native_dir())")
    proc = _run([installed["bin"] / "python", "-c", code], cwd=installed["work"])
    assert proc.returncode == 0, proc.stderr
    module_file, native = map(Path, proc.stdout.split())
    assert module_file.is_relative_to(installed["site"]), module_file
    assert native.is_relative_to(installed["site"]), native
    assert (native / "include" / "stresscoro" / "driver.hpp").is_file()


def test_every_run_time_source_is_installed(installed):
    # Compared with the copy that was installed: the checkout may change meanwhile.
    site, src = installed["site"], installed["src"]
    missing = []
    for src_dir, dest in _LAYOUT.items():
        for path in sorted((src / src_dir).rglob("*")):
            rel = path.relative_to(src / src_dir)
            if path.is_dir() or "__pycache__" in rel.parts or path.suffix == ".pyc":
                continue
            if not (site / dest / rel).is_file():
                missing.append(f"{src_dir}/{rel}")
    assert not missing, ("not in the installed package (pyproject.toml's packages / "
                         f"package-data miss them): {missing}")


def test_no_top_level_strategies_or_native_package(installed):
    site = installed["site"]
    for name in ("strategies", "native", "tests"):
        assert not (site / name).exists(), f"{name}/ installed as a top-level package"
        assert not (site / f"{name}.py").exists()
    (dist_info,) = site.glob("stresscoro-*.dist-info")
    top_level = dist_info / "top_level.txt"
    if top_level.exists():
        assert top_level.read_text().split() == ["stresscoro"]


def test_strategies_import_as_a_subpackage(installed):
    code = ("import stresscoro.strategies as s, importlib.util; print(s.__file__); "
            "print(importlib.util.find_spec('strategies'))")
    proc = _run([installed["bin"] / "python", "-c", code], cwd=installed["work"])
    assert proc.returncode == 0, proc.stderr
    module_file, top = proc.stdout.split("\n")[:2]
    assert Path(module_file).is_relative_to(installed["site"] / "stresscoro" / "strategies")
    assert top == "None"


def test_installed_console_script_lists_targets(installed):
    proc = _run([installed["bin"] / "stresscoro", "targets", "--json"], cwd=installed["work"])
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert isinstance(listed, list)
    for t in listed:
        assert {"name", "kind", "bug_class", "expected", "sanitizers"} <= set(t)
    # Every adapter of the checkout is packaged.
    in_checkout = set()
    for adapter in (installed["src"] / "native" / "targets" / "adapters").glob("*.cpp"):
        for line in adapter.read_text().splitlines():
            if line.replace(" ", "").startswith("//stresscoro:name="):
                in_checkout.add(line.split("=", 1)[1].strip())
    assert {t["name"] for t in listed} == in_checkout
    assert len([t for t in listed if t["bug_class"]]) == len(targets.BUG_CLASSES)


def test_installed_replay_builds_from_packaged_sources(installed):
    work = installed["work"]
    path = work / "leaky.json"
    path.write_text(json.dumps({"format": "stresscoro-schedule", "version": 1,
                                "target": "leaky-task", "ops": [{"op": "make", "slot": 0}]}))
    cache = installed["base"] / "cache"
    proc = _run([installed["bin"] / "stresscoro", "replay", path, "--json", "-"], cwd=work,
                timeout=300, STRESSCORO_CACHE_DIR=str(cache))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["target"] == "leaky-task"
    assert "leak" in [f["kind"] for f in result["findings"]]
    # Built fresh into the isolated cache, so the sources came from this install.
    assert list((cache / "modules").glob("_stresscoro_leaky_task_asan_*"))
