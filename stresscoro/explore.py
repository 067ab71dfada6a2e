"""The native generator's program: build it for a target, draw schedules with it,
decode what it prints (and what a libFuzzer input decodes to) into Schedules.

The program is native/include/stresscoro/explore.hpp compiled after the target's
adapter; the generator it runs is native/include/stresscoro/generator.hpp, the
second implementation of the legality model (its prose: the docstring of
strategies/_internal/schedules.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .build import BuildError, BuildOptions, build_program
from .schedule import CODE_TO_NAME, OPS, InvalidSchedule, Op, Schedule, Signature
from .targets import Target

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
    if len(words) < 5 or len(words) != 5 + 7 * words[4]:
        raise InvalidSchedule("not a driver encoding", field="words", value=words[:5])
    slots, threads, n = words[2], words[3], words[4]
    ops = []
    for i in range(n):
        code, thread, *args = words[5 + 7 * i: 12 + 7 * i]
        name = CODE_TO_NAME.get(code)
        if name is None:
            raise InvalidSchedule("unknown op code", index=i, field="code", value=code)
        ops.append(Op(name, tuple(args[:len(OPS[name].fields)]), thread))
    return Schedule(target=target, ops=tuple(ops), slots=slots, threads=threads,
                    combinators=tuple(combinators), custom_ops=tuple(custom_ops))
