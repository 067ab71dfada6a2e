"""Run schedules against one target: build it, keep a worker, classify every outcome."""

from __future__ import annotations

import time

from . import supervise
from .build import Build, BuildOptions, await_check_error, build_target
from .oracle import Outcome, classify
from .schedule import CODE_TO_NAME, Schedule, Signature
from .signature import normalize_name
from .symbolize import Symbolizer
from .targets import Target
from .worker import SanitizedWorker


class TargetSession:
    """One target under one sanitizer: its build and one live worker.

    Invariant: the worker is replaced after every crash, so run() can always be
    called again; close() (or leaving the with-block) reaps it.
    """

    def __init__(self, target: Target, sanitizer: str = "asan", *, compiler: str | None = None,
                 timeout_s: float = 10.0, memory_mb: int = 4096,
                 extra_cxxflags: tuple[str, ...] = (), symbolize: bool = True):
        self.target = target
        self.sanitizer = sanitizer
        self.options = BuildOptions(
            sanitizer=sanitizer, compiler=compiler, include_dirs=target.include_dirs,
            defines=target.defines, cxxflags=tuple(target.cxxflags) + tuple(extra_cxxflags))
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.symbolize = symbolize
        self._symbolizer = None if symbolize else Symbolizer()
        self._locator: Symbolizer | None = None
        self.build: Build | None = None
        self.worker: SanitizedWorker | None = None
        self.runs = 0
        self._usage: dict = {}

    def open(self) -> "TargetSession":
        if self.worker is None:
            self.build = build_target(self.target.adapter, self.options, name=self.target.name)
            if self._symbolizer is not None:
                self._symbolizer.know(str(self.build.module_path))
            self.worker = SanitizedWorker(self.build, timeout_s=self.timeout_s,
                                          memory_mb=self.memory_mb, symbolize=self.symbolize)
            self.worker.start()
        return self

    def close(self) -> None:
        if self.worker is not None:
            self._usage = self.worker.usage()
            self.worker.close()
            self.worker = None

    def usage(self) -> dict:
        """The worker's SanitizedWorker.usage(), also after close()."""
        return self.worker.usage() if self.worker is not None else dict(self._usage)

    def __enter__(self) -> "TargetSession":
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def capabilities(self) -> set[str]:
        self.open()
        mask = self.worker.capabilities
        return {name for code, name in CODE_TO_NAME.items() if mask & (1 << code)}

    @property
    def factories(self) -> list[dict]:
        self.open()
        return self.worker.description["factories"]

    @property
    def rules(self) -> dict:
        """The ownership rules the adapter declares (defaults from stresscoro/adapter.hpp)."""
        self.open()
        return self.worker.description.get("rules", {})

    @property
    def factory_names(self) -> list[str]:
        return [f["name"] for f in self.factories]

    @property
    def combinators(self) -> tuple[Signature, ...]:
        """The adapter's combinators (make_from), in declared order."""
        self.open()
        return tuple(Signature.from_json(d) for d in self.worker.description.get("combinators", []))

    @property
    def custom_ops(self) -> tuple[Signature, ...]:
        """The adapter's own ops (call), in declared order."""
        self.open()
        return tuple(Signature.from_json(d) for d in self.worker.description.get("custom_ops", []))

    @property
    def checks_off(self) -> list[str]:
        """Checks this target cannot have, each with the reason, in plain words."""
        self.open()
        d = self.worker.description
        off = []
        if not d.get("has_handle"):
            why = ("the adapter declares no handle(), so the driver cannot name an object's "
                   "frame")
            off.append(f"owner-of-freed-frame, resume-freed-frame and continuation-lost are off: "
                       f"{why}; sanitizer findings and leak accounting still run")
            if d.get("has_use_count"):
                off.append("use_count() is declared but not checked: the refcount check compares "
                           "it with the owners of one frame, which needs handle()")
        return off

    @property
    def notes(self) -> list[str]:
        """What the campaign says once about this target: ops left out and why, checks
        that are off and why."""
        self.open()
        d = self.worker.description
        out = []
        if d.get("await") == "left-out":
            why = await_check_error(self.target.adapter, self.options,
                                    rvalue=not d.get("rules", {}).get("await_lvalue", True))
            out.append(f"left out: op probe (a probe coroutine awaiting an object), compiler said: "
                       f"{why or 'the object cannot be awaited from a std::coroutine_handle<>'}")
        return out + self.checks_off

    def run(self, schedule: Schedule) -> Outcome:
        supervise.checkpoint()  # a stop whose KeyboardInterrupt was swallowed ends here
        self.open()
        schedule.check_target(self.capabilities, self.factories,
                              self.worker.description.get("combinators", []),
                              self.worker.description.get("custom_ops", []))
        raw = self.worker.run(schedule.encode())
        self.runs += 1
        return classify(raw, schedule, self._symbolizer.frames if self._symbolizer else None,
                        locate=self.locate)

    def locate(self, offset: int) -> tuple[str, ...]:
        """The inline chain at a code offset of the target's module (a preemption's place)."""
        if self._locator is None:
            self._locator = self._symbolizer or Symbolizer()
        frames = self._locator.frames(str(self.build.module_path), offset)
        # "func file:line", the function named as crash signatures name it (no templates).
        return tuple(f"{normalize_name(func)} {where}" if sep else f
                     for f in frames for func, sep, where in [f.rpartition(" ")])


def replay(schedule: Schedule, target: Target, sanitizer: str = "asan", **session_args) -> tuple[Outcome, float]:
    """Run one schedule once; returns the outcome and the seconds it took (build included)."""
    t0 = time.perf_counter()
    with TargetSession(target, sanitizer, **session_args) as session:
        outcome = session.run(schedule)
    return outcome, time.perf_counter() - t0
