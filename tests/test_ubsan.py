"""UBSan reports become findings like any other sanitizer's."""

from pathlib import Path

from stresscoro import targets
from stresscoro.schedule import Schedule, make, op
from stresscoro.session import TargetSession

OVERFLOW = Path(__file__).parent / "adapters" / "overflow.cpp"


def test_signed_overflow_is_reported_at_its_op_and_line():
    s = Schedule("overflow", (make(0), op("resume", 0), op("resume", 0)))
    with TargetSession(targets.from_adapter(OVERFLOW), "ubsan") as session:
        outcome = session.run(s)
        assert outcome.primary is not None, outcome.raw.stderr
        assert outcome.primary.kind == "undefined-behavior"
        assert outcome.primary.op_index == 2
        assert "signed integer overflow" in outcome.primary.summary
        assert "overflow.cpp" in outcome.primary.location
        # One resume stays inside the range: clean, on a fresh worker.
        assert session.run(Schedule("overflow", (make(0), op("resume", 0)))).ok
