"""Shared fixtures: one TargetSession per (target, sanitizer), reused across a module;
and a session-end check that this test run left nothing in /dev/shm or the temp folder.

Other test runs may share the machine: every stresscoro file this session (and every
process it starts) creates carries this session's run tag (supervise.RUN_TAG_ENV, set
here before pytest-xdist starts its workers, inherited by every subprocess), and the
check looks at those names only.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

from stresscoro import supervise, targets
from stresscoro.build import CompilerNotFound, resolve_compiler
from stresscoro.session import TargetSession

TESTS = Path(__file__).parent
SCHEDULES = TESTS / "schedules"


def _clang() -> str | None:
    try:
        return resolve_compiler("clang++")[0]
    except CompilerNotFound:
        return None


CLANG = _clang()  # clang++'s path, or None when it is not installed
NEEDS_CLANG = pytest.mark.skipif(
    CLANG is None, reason="clang++ is not installed (apt-get install clang-16); g++ runs everywhere else")


@pytest.fixture(scope="module")
def sessions():
    """sessions(target_name_or_adapter, sanitizer) -> an open TargetSession, cached."""
    opened: dict[tuple[str, str], TargetSession] = {}

    def get(name: str, sanitizer: str = "asan") -> TargetSession:
        key = (name, sanitizer)
        if key not in opened:
            opened[key] = TargetSession(targets.get(name), sanitizer).open()
        return opened[key]

    yield get
    for s in opened.values():
        s.close()

# tests/data holds projects that tests copy and run pytest on in a subprocess.
collect_ignore = ["data"]


def pytest_configure(config):
    if not hasattr(config, "workerinput") and not os.environ.get(supervise.RUN_TAG_ENV):
        os.environ[supervise.RUN_TAG_ENV] = "t" + uuid.uuid4().hex[:12]


def left_behind(tag: str) -> list[str]:
    """stresscoro files and folders in /dev/shm and the temp folder whose name carries `tag`."""
    found = []
    for root in (supervise.shm_dir(), tempfile.gettempdir()):
        if root is None:
            continue
        found += [os.path.join(root, n) for n in os.listdir(root)
                  if n.startswith("stresscoro-") and f"-{tag}" in n]
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # the controller checks once every worker is done
    tag = os.environ.get(supervise.RUN_TAG_ENV, "")
    left = left_behind(tag) if tag else []
    if left:
        session.config.stresscoro_left_behind = left
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    left = getattr(config, "stresscoro_left_behind", None)
    if left:
        terminalreporter.section("stresscoro: files left behind", red=True)
        for path in left:
            terminalreporter.line(f"left behind by this test run: {path}")
