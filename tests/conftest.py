"""Shared fixtures: one TargetSession per (target, sanitizer), reused across a module."""

from __future__ import annotations

from pathlib import Path

import pytest

from stresscoro import targets
from stresscoro.session import TargetSession

TESTS = Path(__file__).parent
SCHEDULES = TESTS / "schedules"


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
