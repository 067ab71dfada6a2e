"""The same targets under clang++ as under g++, when clang++ is installed."""


import pytest

from stresscoro import schedule as sched
from stresscoro import targets
from stresscoro.build import resolve_compiler, CompilerNotFound
from stresscoro.session import TargetSession

from conftest import SCHEDULES


def _clang():
    try:
        return resolve_compiler("clang++")[0]
    except CompilerNotFound:
        return None


CLANG = _clang()
pytestmark = pytest.mark.skipif(
    CLANG is None, reason="clang++ is not installed (apt-get install clang-16); g++ runs everywhere else")


@pytest.mark.parametrize("name,sanitizer,kind", [
    ("copyable-task", "asan", "heap-use-after-free"),
    ("leaky-task", "asan", "leak"),
    ("relaxed-shared-task", "tsan", "data-race"),
])
def test_seeded_bug_found_under_clang(name, sanitizer, kind):
    s = sched.load(str(SCHEDULES / f"{name}.json"))
    with TargetSession(targets.get(name), sanitizer, compiler="clang++") as session:
        assert session.build.compiler_family == "clang"
        outcome = session.run(s)
    assert outcome.primary is not None and outcome.primary.kind == kind
    assert "libclang_rt" not in outcome.primary.location


def test_correct_twin_clean_under_clang():
    s = sched.Schedule("task", (sched.make(0), sched.op("move", 0, 1), sched.op("resume", 1)))
    with TargetSession(targets.get("task"), "asan", compiler="clang++") as session:
        assert session.run(s).ok
