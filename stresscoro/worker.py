"""Run schedules in persistent, supervised, sanitized worker processes."""

from __future__ import annotations

import atexit
import dataclasses
import json
import mmap
import os
import select
import struct
import time
import weakref
from pathlib import Path

from . import supervise
from .build import Build
from .zygote import Zygote

# Mirrors native/include/stresscoro/detail/event_log.hpp.
HW_OP_IN_FLIGHT, HW_THREAD_IN_FLIGHT, HW_EVENTS, HW_CAPACITY, HW_STATUS, HW_DROPPED = 1, 2, 3, 4, 5, 6
HEADER_WORDS = 8
EVENT_WORDS = 7
DEFAULT_EVENT_CAPACITY = 1 << 15
RSS_SAMPLE_EVERY = 64  # runs between two RSS samples for usage() (a sample reads /proc)
RUN_ERRORS = {-1: "bad schedule header", -2: "op not supported or out of range",
              -3: "shared area too small", -4: "could not start schedule threads"}

# Sanitizer settings for every worker. Whole-process leak checking is off (CPython
# leaks at exit; the driver accounts per schedule); the first error ends the process.
# A runner leaves through _exit with its schedule threads alive: TSan must not sleep
# there (atexit_sleep_ms) waiting for races of threads that have nothing left to do.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:"
                    "symbolize=1:print_summary=1:use_sigaltstack=1:handle_segv=1:"
                    "handle_abort=1:detect_stack_use_after_return=0:malloc_context_size=12",
    "TSAN_OPTIONS": "halt_on_error=1:exitcode=86:report_signal_unsafe=0:symbolize=1:"
                    "second_deadlock_stack=1:atexit_sleep_ms=0",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=86:symbolize=1",
}

_live_workers: "weakref.WeakSet[SanitizedWorker]" = weakref.WeakSet()


class WorkerError(RuntimeError):
    """A worker could not be started at all (not a crash while running a schedule)."""


@dataclasses.dataclass
class RawOutcome:
    """What one schedule run produced, uninterpreted: the oracle classifies it."""

    status: str  # "ok", "crashed", "hang", "memory", "harness-error"
    stderr: str
    events: list[tuple[int, ...]]
    op_in_flight: int  # -1 when no op was running
    thread_in_flight: int
    elapsed_s: float
    exit_code: int | None = None  # the process's own exit code, after a crash
    signal: str | None = None  # the signal that ended it, after a crash
    rc: int = 0  # the driver's return code
    dropped_events: int = 0
    detail: str = ""


class SanitizedWorker:
    """A target module loaded under its sanitizer runtime, serving schedules.

    Two processes (zygote.py supervises them): a *zygote* that loads the module once and
    forks, and a *runner* forked from it that runs schedules. A crash, hang or
    memory-cap kill costs the runner only; the next run() forks a new one in
    milliseconds. This class holds the protocol: the shared area, the framed request
    and reply, the stderr file, and the verdicts.

    Invariants: at most one schedule in flight; after a crash, hang or memory-cap kill
    the runner and its children are gone and reaped before run() returns; close() leaves
    no process behind (the whole session is killed and the zygote reaped) and removes
    the shared area and the temp folder.
    """

    def __init__(self, build: Build, *, timeout_s: float = 10.0, memory_mb: int = 4096,
                 event_capacity: int = DEFAULT_EVENT_CAPACITY, env: dict[str, str] | None = None,
                 symbolize: bool = True):
        self.build = build
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.capabilities = 0
        self.description: dict = {}
        self.starts = 0  # runners forked, the first one included
        self.last_start_s = 0.0  # seconds the last runner took to be ready
        self.runs = 0
        self._extra_env = env or {}
        # Unsymbolized reports are several times cheaper; frames then read module+offset,
        # which is stable within one build and good enough to tell findings apart.
        self.symbolize = symbolize
        self._zygote = Zygote()
        supervise.clean_stale(once=True)
        self._dir = supervise.owned_dir("worker")
        self._shared_words = HEADER_WORDS + EVENT_WORDS * event_capacity
        fd, self._shared_path = supervise.owned_file("shared", supervise.shm_dir())
        os.ftruncate(fd, self._shared_words * 8)
        self._shared = mmap.mmap(fd, self._shared_words * 8)
        os.close(fd)
        self._stderr_path = Path(self._dir) / "stderr.txt"
        self._stderr = None
        self._request_w = self._reply_r = -1
        _live_workers.add(self)

    # -- lifecycle -------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The runner's pid (None between a crash and the next run)."""
        return self._zygote.runner.pid if self._zygote.runner else None

    def alive(self) -> bool:
        return self._zygote.alive() and self._zygote.runner is not None

    def start(self) -> None:
        """Start the zygote if needed, then fork a runner if none is alive."""
        if self.alive():
            return
        t0 = time.perf_counter()
        if not self._zygote.alive():
            self._kill()
            self._start_zygote()
        self._fork_runner()
        self.last_start_s = time.perf_counter() - t0

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(SANITIZER_ENV)
        if not self.symbolize:
            for name in SANITIZER_ENV:
                env[name] = env[name].replace("symbolize=1", "symbolize=0")
        env.update(self._extra_env)
        env.pop("PYTHONSTARTUP", None)
        if self.build.runtime is not None:
            env["LD_PRELOAD"] = str(self.build.runtime)
            if self.build.sanitizer == "asan" and self.build.compiler_family == "gcc":
                # ASan binds its __cxa_throw interceptor when it starts; the interpreter
                # has no libstdc++ yet, so every C++ throw would fail an ASan CHECK.
                env["LD_PRELOAD"] += ":libstdc++.so.6"
        else:
            env.pop("LD_PRELOAD", None)
        return env

    def _start_zygote(self) -> None:
        self._stderr = open(self._stderr_path, "ab")
        args = [str(self.build.module_path), self.build.module_name, self._shared_path,
                _cffi_backend_dir()]
        hello = self._zygote.start(args, self._environment(), self._stderr,
                                   timeout_s=max(30.0, self.timeout_s))
        if hello is None:
            text = self._take_stderr(0)
            self._kill()
            raise WorkerError(
                f"worker for {self.build.module_name} ({self.build.sanitizer}) did not start. "
                f"Its output:\n{text.strip() or '(nothing)'}")
        info = json.loads(hello)
        self.capabilities = info["capabilities"]
        self.description = info["describe"]

    def _fork_runner(self) -> None:
        pipes = self._zygote.fork_runner(timeout_s=max(30.0, self.timeout_s))
        if pipes is None:
            text = self._take_stderr(0)
            self._kill()
            raise WorkerError(f"worker for {self.build.module_name} could not fork a runner. "
                              f"Its output:\n{text.strip() or '(nothing)'}")
        self._request_w, self._reply_r = pipes
        self.starts += 1

    def close(self) -> None:
        self._kill()
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        supervise.remove_path(self._shared_path)
        supervise.remove_path(self._dir)
        _live_workers.discard(self)

    def __enter__(self) -> "SanitizedWorker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- running ---------------------------------------------------------------

    def run(self, encoded: list[int]) -> RawOutcome:
        """Run one encoded schedule; never raises for what the schedule did to the worker."""
        if not self.alive():
            self.start()
        self._reset_shared()
        self.runs += 1
        if self.runs % RSS_SAMPLE_EVERY == 1:
            self._zygote.runner_rss()  # a sample for usage(); long runs are sampled while they wait
        offset = os.fstat(self._stderr.fileno()).st_size
        payload = struct.pack(f"<{len(encoded)}i", *encoded)
        t0 = time.perf_counter()
        try:
            os.write(self._request_w, struct.pack("<I", len(payload)) + payload)
        except BrokenPipeError:
            pass  # it died between runs; the wait below reports the crash
        status, detail = "ok", ""
        reply = self._wait_reply()
        elapsed = time.perf_counter() - t0
        rc = 0
        exit_code = sig = None
        if isinstance(reply, str):  # a supervision verdict: hang or memory
            status, detail = reply, self._verdict_detail(reply)
            self._zygote.kill_runner()
            self._drop_runner()
        elif reply is None:
            status = "crashed"
            exit_code, sig = self._zygote.runner_exit()
            self._drop_runner()
        else:
            (rc,) = struct.unpack("<i", reply)
            if rc != 0:
                status, detail = "harness-error", RUN_ERRORS.get(rc, f"driver error {rc}")
        header = self._header()
        # Most runs write nothing: read the file only when it grew.
        grew = status != "ok" or (self._stderr is not None
                                  and os.fstat(self._stderr.fileno()).st_size > offset)
        return RawOutcome(
            status=status,
            stderr=self._take_stderr(offset) if grew else "",
            events=self._events(header),
            op_in_flight=header[HW_OP_IN_FLIGHT],
            thread_in_flight=header[HW_THREAD_IN_FLIGHT],
            elapsed_s=elapsed,
            exit_code=exit_code,
            signal=sig,
            rc=rc,
            dropped_events=header[HW_DROPPED],
            detail=detail,
        )

    # -- internals -------------------------------------------------------------

    def _verdict_detail(self, verdict: str) -> str:
        if verdict == "hang":
            return f"no answer within {self.timeout_s:g} s; process tree killed"
        return f"resident memory above {self.memory_mb} MiB; process tree killed"

    def usage(self) -> dict:
        """Resources used so far: CPU seconds of the zygotes and all their runners, the
        peak runner RSS sampled, the crashes, hangs and memory-cap kills survived
        (runners replaced), and the schedules run."""
        return {"worker_cpu_s": round(self._zygote.cpu_seconds(), 3),
                "peak_rss_mb": round(self._zygote.peak_rss / 2**20, 1),
                "crashes_survived": max(0, self.starts - 1), "runs": self.runs}

    def _over_memory(self) -> bool:
        return self._zygote.runner_rss() > self.memory_mb * 1024 * 1024

    def _wait_reply(self) -> bytes | str | None:
        """The runner's framed reply; None if it died (the zygote says so on the control
        socket); "hang" or "memory" when supervision gives up on it."""
        deadline = time.monotonic() + self.timeout_s
        buf, need, size = b"", 4, None
        slice_s = 0.005
        control = self._zygote.control
        watched = [self._reply_r, control]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                # A hog that is also slow is still a hog: the cap decides first.
                return "memory" if self._over_memory() else "hang"
            ready, _, _ = select.select(watched, [], [], min(slice_s, left))
            if not ready:
                slice_s = min(slice_s * 2, 0.05)
                if slice_s >= 0.02 and self._over_memory():
                    return "memory"
                continue
            if self._reply_r in ready:
                chunk = os.read(self._reply_r, need - len(buf))
                if not chunk:
                    return None
                buf += chunk
                if len(buf) == need:
                    if size is None:
                        (size,) = struct.unpack("<I", buf)
                        buf, need = b"", size
                    else:
                        return buf
            elif control in ready:
                return None  # the zygote reports the runner's end

    def _drop_runner(self) -> None:
        for fd in (self._request_w, self._reply_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._request_w = self._reply_r = -1

    def _kill(self) -> None:
        """Kill the whole session and close our ends of it."""
        self._zygote.kill()
        self._drop_runner()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _reset_shared(self) -> None:
        self._shared[: HEADER_WORDS * 8] = bytes(HEADER_WORDS * 8)

    def _header(self) -> list[int]:
        return list(struct.unpack_from(f"<{HEADER_WORDS}q", self._shared, 0))

    def _events(self, header: list[int]) -> list[tuple[int, ...]]:
        n = max(0, min(header[HW_EVENTS], (self._shared_words - HEADER_WORDS) // EVENT_WORDS))
        flat = struct.unpack_from(f"<{n * EVENT_WORDS}q", self._shared, HEADER_WORDS * 8)
        return [flat[i: i + EVENT_WORDS] for i in range(0, len(flat), EVENT_WORDS)]

    def _take_stderr(self, offset: int) -> str:
        try:
            with open(self._stderr_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def _cffi_backend_dir() -> str:
    import _cffi_backend

    return os.path.dirname(_cffi_backend.__file__)


@atexit.register
def _close_all() -> None:
    for w in list(_live_workers):
        try:
            w.close()
        except Exception:
            pass
