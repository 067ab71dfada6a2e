"""The native generator's program: build it for a target, draw schedules with it,
decode what it prints (and what a libFuzzer input decodes to) into Schedules.

The program is native/include/stresscoro/explore.hpp compiled after the target's
adapter; the generator it runs is native/include/stresscoro/generator.hpp, the
second implementation of the legality model (its prose: the docstring of
strategies/_internal/schedules.py)."""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import supervise
from .build import BuildError, BuildOptions, build_program
from . import schedule
from .schedule import MAX_OPS, MAX_PREEMPTIONS, OP_WORDS, PREEMPTION_WORDS, Schedule, Signature
from .strategies import MAX_DRAWN_PREEMPTIONS
from .targets import Target
from .worker import SANITIZER_ENV

if TYPE_CHECKING:
    from .runner import CampaignResult

PROGRAM_HEADER = "stresscoro/explore.hpp"


class NativeProgram:
    """One target's explorer program under one sanitizer."""

    def __init__(self, target: Target, sanitizer: str = "none", *, compiler: str | None = None,
                 extra_cxxflags: tuple[str, ...] = ()) -> None:
        self.target = target
        self.options = BuildOptions(sanitizer=sanitizer, compiler=compiler,
                                    include_dirs=target.include_dirs, defines=target.defines,
                                    cxxflags=tuple(target.cxxflags) + tuple(extra_cxxflags))
        self.path = build_program(target.adapter, self.options, PROGRAM_HEADER, name=target.name)
        self._description: dict | None = None

    def _run(self, *args: str, timeout: float = 120.0) -> str:
        proc = subprocess.run([str(self.path), *args], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise BuildError(f"{self.path.name} {' '.join(args)} exited {proc.returncode}: "
                             f"{proc.stderr.strip()}")
        return proc.stdout

    @property
    def description(self) -> dict:
        if self._description is None:
            self._description = json.loads(self._run("describe"))
        return self._description

    def signatures(self) -> tuple[tuple[Signature, ...], tuple[Signature, ...]]:
        d = self.description
        return (tuple(Signature.from_json(x) for x in d.get("combinators", [])),
                tuple(Signature.from_json(x) for x in d.get("custom_ops", [])))

    def generate(self, first_seed: int, count: int, *, from_bytes: bool = False,
                 **settings: int) -> list[Schedule]:
        """`count` schedules drawn natively from seeds first_seed, first_seed + 1, ...
        (from_bytes: from random byte strings those seeds make, the fuzzer's path)."""
        out = self._run("gen-bytes" if from_bytes else "gen", str(first_seed), str(count),
                        *_settings_args(settings))
        return [self.decode_ints([int(w) for w in line.split()]) for line in out.splitlines()]

    def decode_file(self, path: str | Path, **settings: int) -> Schedule:
        """The schedule a byte string (a libFuzzer crash-* file) decodes to."""
        out = self._run("decode", str(path), *_settings_args(settings))
        return self.decode_ints([int(w) for w in out.split()])

    def decode_ints(self, words: list[int]) -> Schedule:
        combinators, custom_ops = self.signatures()
        return decode(self.target.name, words, combinators, custom_ops)


def _settings_args(settings: dict[str, int]) -> list[str]:
    args = []
    for key in ("max_ops", "slots", "threads"):
        if settings.get(key) is not None:
            args += [f"--{key.replace('_', '-')}", str(settings[key])]
    return args


def decode(target: str, words: list[int], combinators=(), custom_ops=()) -> Schedule:
    """A Schedule from the driver's int encoding (the inverse of Schedule.encode)."""
    return schedule.decode(target, words, combinators, custom_ops)


# The shared area of `explore` mode (native/include/stresscoro/explore.hpp mirrors it):
# header words, then the encoded schedule in flight, then the driver's shared area.
AREA_MAGIC = 0x53435850
AW_MAGIC, AW_SEED, AW_DONE, AW_LENGTH, AW_STOP, AW_RUNS, AW_HEADER = 0, 1, 2, 3, 4, 5, 8
AREA_SCHEDULE_WORDS = 6 + OP_WORDS * MAX_OPS + PREEMPTION_WORDS * MAX_PREEMPTIONS
DEFAULT_INTERLEAVE = {"interleave": "pct", "depth": 2, "interleavings": 1, "bound": 2}
AREA_DRIVER_WORDS = 1 << 16
AREA_BYTES = 8 * (AW_HEADER + AREA_SCHEDULE_WORDS + AREA_DRIVER_WORDS)
BATCH_SECONDS = 1.0  # a batch is sized to take about this long
MAX_BATCH = 1 << 20
DEFAULT_MAX_FINDINGS = 8  # schedules with a finding collected before exploring stops


@dataclasses.dataclass
class Exploration:
    """What a run of native batches saw: schedules run, the ones that stopped a batch
    (with the seconds since the start when each was seen), and the time it took."""

    schedules: int = 0
    runs: int = 0  # the schedules' first runs and their interleavings
    stops: list[tuple[Schedule, float]] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    batches: int = 0


def explore_batches(program: NativeProgram, *, seed: int = 0, schedules: int = 1_000_000,
                    seconds: float | None = None, max_findings: int = DEFAULT_MAX_FINDINGS,
                    timeout_s: float = 10.0, memory_mb: int = 4096,
                    settings: dict | None = None,
                    progress: Callable[[str], None] | None = None,
                    interleave: dict | None = None) -> Exploration:
    """Run the program's native explorer in batches, each in a fresh process supervised by
    supervise.run_bounded. The schedule in flight lives in a shared file, so a batch that
    crashes, hangs, runs out of memory or stops on a finding of the driver's own hands
    its exact schedule back; the next batch goes on with the next seed. `interleave`
    ({"interleave": "pct", "depth": 2, "interleavings": 1, "bound": 2} by default) says
    how schedules of two or more threads are preempted inside their ops; `runs` counts
    every run, a schedule's first and each interleaving tried."""
    settings = dict(settings or {})
    interleave_args = [a for k, v in {**DEFAULT_INTERLEAVE, **(interleave or {})}.items()
                       for a in (f"--{k}", str(v))]
    env = {**os.environ, **SANITIZER_ENV}
    for key in ("ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"):
        env[key] += ":symbolize=0"  # the finding is re-run symbolized when it is reported
    # Nor is a batch's report read at all: a stop is replayed in a worker, which keeps
    # the allocation stacks. Unwinding one at every malloc and free was a quarter of
    # the CPU time on a target whose schedules allocate thousands of frames (chain-task)
    # under ASan, and a tenth of a 2-thread shared-task schedule under TSan.
    for key in ("ASAN_OPTIONS", "TSAN_OPTIONS"):
        env[key] += ":malloc_context_size=0"
    result = Exploration()
    t0 = time.perf_counter()
    fd, path = supervise.owned_file("shared", supervise.shm_dir())
    try:
        os.ftruncate(fd, AREA_BYTES)
        area = mmap.mmap(fd, AREA_BYTES)
        try:
            batch, next_seed, last_report = 256, seed << 32, t0
            while result.schedules < schedules and len(result.stops) < max_findings:
                if seconds is not None and time.perf_counter() - t0 >= seconds:
                    break
                n = min(batch, schedules - result.schedules)
                area[:8 * AW_HEADER] = bytes(8 * AW_HEADER)
                started = time.perf_counter()
                ran = supervise.run_bounded(
                    [str(program.path), "explore", str(next_seed), str(n), path,
                     *_settings_args(settings), *interleave_args],
                    timeout_s=timeout_s + 4 * BATCH_SECONDS, memory_mb=memory_mb, env=env)
                took = time.perf_counter() - started
                result.batches += 1
                words = struct.unpack_from(f"<{AW_HEADER}q", area, 0)
                done, stop = int(words[AW_DONE]), int(words[AW_STOP])
                result.runs += int(words[AW_RUNS])
                clean = ran.status == "exited" and ran.returncode == 0 and stop == 0
                if clean:
                    result.schedules += n
                    next_seed += n
                    batch = max(16, min(MAX_BATCH, int(n * BATCH_SECONDS / max(took, 1e-3))))
                elif stop == 2 or words[AW_MAGIC] != AREA_MAGIC:
                    raise BuildError(f"the native explorer of {program.target.name} stopped "
                                     f"without a schedule in flight ({ran.status}, exit "
                                     f"{ran.returncode}): {ran.stderr.strip()[-800:]}")
                else:
                    length = int(words[AW_LENGTH])
                    ints = struct.unpack_from(f"<{length}q", area, 8 * AW_HEADER)
                    result.stops.append((program.decode_ints(list(ints)), time.perf_counter() - t0))
                    result.schedules += done + 1
                    next_seed += done + 1
                now = time.perf_counter()
                if progress and now - last_report >= 2.0:
                    last_report = now
                    progress(f"{program.target.name}: {result.schedules} schedules, "
                             f"{len(result.stops)} stop(s), {result.schedules / (now - t0):.0f}/s")
        finally:
            area.close()
    finally:
        os.close(fd)
        supervise.remove_path(path)
    result.elapsed_s = time.perf_counter() - t0
    return result


def run_explore(target: Target, sanitizer: str, *, seed: int | None = None,
                schedules: int = 1_000_000, seconds: float | None = None,
                max_findings: int = DEFAULT_MAX_FINDINGS, compiler: str | None = None,
                timeout_s: float = 10.0, memory_mb: int = 4096, out_dir=None,
                verify: bool = True, max_ops: int | None = None, slots: int | None = None,
                threads: int | None = None, progress: Callable[[str], None] | None = None,
                database: object = "default", tsan_fence_annotations: bool = False,
                interleave: dict | None = None, **_hypothesis_only) -> "CampaignResult":
    """A campaign of the native engine: explore, then shrink and report every distinct
    finding as `fuzz` does (shrink.report_schedules). Each minimal schedule is kept in
    the example database `fuzz` uses (runner.example_database: Hypothesis's own unless
    `database` names another or None; off under a fixed `seed` unless named), under
    the key of the `fuzz` campaign on this target and sanitizer, which replays it first."""
    from .runner import default_threads, example_database, fence_flags
    from .shrink import report_schedules

    t0 = time.perf_counter()
    program = NativeProgram(target, sanitizer, compiler=compiler,
                            extra_cxxflags=fence_flags(tsan_fence_annotations))
    settings = {"max_ops": max_ops, "slots": slots,
                "threads": threads or default_threads(sanitizer, target)}
    seen = explore_batches(program, seed=seed or 0, schedules=schedules, seconds=seconds,
                           max_findings=max_findings, timeout_s=timeout_s,
                           memory_mb=memory_mb, settings=settings, progress=progress,
                           interleave=interleave)
    return report_schedules(target, sanitizer, [s for s, _ in seen.stops],
                            examples=seen.schedules, t0=t0,
                            first_seen=[at for _, at in seen.stops], compiler=compiler,
                            timeout_s=timeout_s, memory_mb=memory_mb, out_dir=out_dir,
                            verify=verify, progress=progress,
                            database=example_database(database, seed),
                            tsan_fence_annotations=tsan_fence_annotations, **settings)
