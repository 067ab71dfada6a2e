"""Hypothesis strategies for stresscoro schedules.

Installed as ``stresscoro.strategies`` (the repository keeps it at top-level
``strategies/``); import it as ``from stresscoro.strategies import schedules``.
"""

from stresscoro.strategies._internal.schedules import (
    DEFAULT_MAX_OPS,
    COMPOSITION_SLOTS,
    DEFAULT_SLOTS,
    MAX_DRAWN_AFTER,
    MAX_DRAWN_PREEMPTIONS,
    OP_ORDER,
    drive_suffixes,
    interleavings,
    rebuild,
    enumerate_schedules,
    schedule_choices,
    schedules,
    schedules_for,
    session_arguments,
)

__all__ = ["COMPOSITION_SLOTS", "DEFAULT_MAX_OPS", "DEFAULT_SLOTS", "MAX_DRAWN_AFTER",
           "MAX_DRAWN_PREEMPTIONS", "OP_ORDER",
           "drive_suffixes", "enumerate_schedules", "interleavings", "rebuild", "schedule_choices",
           "schedules", "schedules_for", "session_arguments"]
