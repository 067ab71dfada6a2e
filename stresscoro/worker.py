"""Run schedules in persistent, supervised, sanitized worker processes."""

from __future__ import annotations

import atexit
import dataclasses
import json
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

import psutil

from .build import Build

# Mirrors native/include/stresscoro/detail/event_log.hpp.
HW_OP_IN_FLIGHT, HW_THREAD_IN_FLIGHT, HW_EVENTS, HW_CAPACITY, HW_STATUS, HW_DROPPED = 1, 2, 3, 4, 5, 6
HEADER_WORDS = 8
EVENT_WORDS = 7
DEFAULT_EVENT_CAPACITY = 1 << 15
RSS_SAMPLE_EVERY = 64  # runs between two RSS samples (a sample costs a /proc read)
RUN_ERRORS = {-1: "bad schedule header", -2: "op not supported or out of range",
              -3: "shared area too small", -4: "could not start schedule threads"}

# Sanitizer settings for every worker. Whole-process leak checking is off (CPython
# leaks at exit; the driver accounts per schedule); the first error ends the process.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:"
                    "symbolize=1:print_summary=1:use_sigaltstack=1:handle_segv=1:"
                    "handle_abort=1:detect_stack_use_after_return=0:malloc_context_size=12",
    "TSAN_OPTIONS": "halt_on_error=1:exitcode=86:report_signal_unsafe=0:symbolize=1:"
                    "second_deadlock_stack=1",
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

    Two processes: a *zygote* that loads the module once and forks, and a *runner*
    forked from it that runs schedules. A crash, hang or memory-cap kill costs the
    runner only; the next run() forks a new one in milliseconds.

    Invariants: at most one schedule in flight; after a crash, hang or memory-cap kill
    the runner and its children are gone and reaped before run() returns; close() leaves
    no process behind (the whole session is killed and the zygote reaped).
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
        self.peak_rss = 0  # bytes, the largest runner RSS psutil saw (sampled)
        self._cpu_s = 0.0  # CPU seconds of zygotes already gone, their runners included
        self._extra_env = env or {}
        # Unsymbolized reports are several times cheaper; frames then read module+offset,
        # which is stable within one build and good enough to tell findings apart.
        self.symbolize = symbolize
        self._zygote: psutil.Popen | None = None
        self._control: socket.socket | None = None
        self._control_buf = b""
        self._runner: psutil.Process | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="stresscoro-worker-")
        self._shared_words = HEADER_WORDS + EVENT_WORDS * event_capacity
        shm_root = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        fd, self._shared_path = tempfile.mkstemp(prefix="stresscoro-shared-", dir=shm_root)
        os.ftruncate(fd, self._shared_words * 8)
        self._shared = mmap.mmap(fd, self._shared_words * 8)
        os.close(fd)
        self._stderr_path = Path(self._dir.name) / "stderr.txt"
        self._stderr = None
        self._request_w = self._reply_r = -1
        _live_workers.add(self)

    # -- lifecycle -------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The runner's pid (None between a crash and the next run)."""
        return self._runner.pid if self._runner else None

    def alive(self) -> bool:
        return self._zygote is not None and self._zygote.poll() is None and self._runner is not None

    def start(self) -> None:
        """Start the zygote if needed, then fork a runner if none is alive."""
        if self.alive():
            return
        t0 = time.perf_counter()
        if self._zygote is None or self._zygote.poll() is not None:
            self._kill()
            self._start_zygote()
        self._fork_runner()
        self.last_start_s = time.perf_counter() - t0

    def _start_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
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
        self._stderr = open(self._stderr_path, "ab")
        main = Path(__file__).with_name("_worker_main.py")
        argv = [_real_python(), "-S", "-E", str(main), str(self.build.module_path),
                self.build.module_name, self._shared_path, str(theirs.fileno()),
                str(os.getpid()), _cffi_backend_dir()]
        try:
            self._zygote = psutil.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                        stderr=self._stderr, env=env, pass_fds=(theirs.fileno(),),
                                        start_new_session=True)
        finally:
            theirs.close()
        self._control, self._control_buf = ours, b""
        hello = self._control_line(timeout=max(30.0, self.timeout_s))
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
        request_r, self._request_w = os.pipe()
        self._reply_r, reply_w = os.pipe()
        try:
            socket.send_fds(self._control, [b"fork"], [request_r, reply_w])
        except OSError:
            pass  # the zygote is gone; the read below says so
        finally:
            os.close(request_r)
            os.close(reply_w)
        line = self._control_line(timeout=max(30.0, self.timeout_s))
        if line is None or not line.startswith("pid "):
            text = self._take_stderr(0)
            self._kill()
            raise WorkerError(f"worker for {self.build.module_name} could not fork a runner. "
                              f"Its output:\n{text.strip() or '(nothing)'}")
        self._runner = psutil.Process(int(line.split()[1]))
        self.starts += 1

    def close(self) -> None:
        self._kill()
        if self._shared is not None:
            self._shared.close()
            self._shared = None
            try:
                os.unlink(self._shared_path)
            except FileNotFoundError:
                pass
        self._dir.cleanup()
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
            self._sample_rss()
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
            self._kill_runner()
        elif reply is None:
            status = "crashed"
            exit_code, sig = self._runner_exit()
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

    def _wait_reply(self) -> bytes | str | None:
        """The runner's framed reply; None if it died (the zygote says so on the control
        socket); "hang" or "memory" when supervision gives up on it."""
        deadline = time.monotonic() + self.timeout_s
        buf, need, size = b"", 4, None
        slice_s = 0.005
        watched = [self._reply_r, self._control]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "hang"
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
            elif self._control in ready:
                return None  # the zygote reports the runner's end

    def _control_line(self, timeout: float) -> str | None:
        """One line from the zygote, or None if it died or said nothing in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._control_buf:
            left = deadline - time.monotonic()
            if left <= 0 or self._control is None:
                return None
            ready, _, _ = select.select([self._control], [], [], min(left, 0.1))
            if not ready:
                if self._zygote is not None and self._zygote.poll() is not None:
                    return None
                continue
            chunk = self._control.recv(4096)
            if not chunk:
                return None
            self._control_buf += chunk
        line, _, self._control_buf = self._control_buf.partition(b"\n")
        return line.decode()

    def _over_memory(self) -> bool:
        return self._sample_rss() > self.memory_mb * 1024 * 1024

    def _sample_rss(self) -> int:
        # The runner itself only: its children are short-lived symbolizers, and
        # walking /proc for them costs more than a whole schedule.
        if self._runner is None:
            return 0
        try:
            rss = self._runner.memory_info().rss
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def usage(self) -> dict:
        """Resources used so far: CPU seconds of the zygote and every runner (those the
        zygote reaped are in its children's times), the peak runner RSS sampled, and the
        crashes, hangs and memory-cap kills survived (runners replaced)."""
        cpu = self._cpu_s + _cpu_seconds(self._zygote, self._runner)
        return {"worker_cpu_s": round(cpu, 3), "peak_rss_mb": round(self.peak_rss / 2**20, 1),
                "crashes_survived": max(0, self.starts - 1), "runs": self.runs}

    def _runner_exit(self) -> tuple[int | None, str | None]:
        """How the runner ended, as the zygote saw it through waitpid."""
        line = self._control_line(timeout=10)
        self._drop_runner()
        if line is None or not line.startswith("exit "):
            self._kill()  # the zygote itself is gone or stuck: start over next time
            return None, "SIGKILL"
        status = int(line.split()[1])
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            return None, signal.Signals(-code).name
        return code, None

    def _kill_runner(self) -> None:
        """Kill the runner and whatever it started; the zygote reaps it and says so."""
        if self._runner is not None:
            tree = _kill_tree(self._runner)
            psutil.wait_procs(tree[:-1], timeout=5)  # the runner itself is the zygote's to reap
        self._runner_exit()

    def _drop_runner(self) -> None:
        self._runner = None
        for fd in (self._request_w, self._reply_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._request_w = self._reply_r = -1

    def _kill(self) -> None:
        """Kill the whole session (zygote, runner, their children) and reap it."""
        zygote, self._zygote = self._zygote, None
        self._cpu_s += _cpu_seconds(zygote, self._runner)
        self._drop_runner()
        if zygote is not None:
            tree = _kill_tree(zygote)  # enumerated before anything dies and gets reparented
            try:
                os.killpg(zygote.pid, signal.SIGKILL)  # and whatever escaped the enumeration
            except (ProcessLookupError, PermissionError):
                pass
            psutil.wait_procs(tree, timeout=5)
            try:
                zygote.wait(timeout=5)
            except (psutil.Error, ChildProcessError):
                pass
        if self._control is not None:
            self._control.close()
            self._control = None
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


def _cpu_seconds(zygote: psutil.Process | None, runner: psutil.Process | None) -> float:
    total = 0.0
    for proc, reaped_too in ((zygote, True), (runner, False)):
        if proc is None:
            continue
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + ((t.children_user + t.children_system) if reaped_too else 0.0)
    return total


def _kill_tree(root: psutil.Process) -> list[psutil.Process]:
    """SIGKILL `root` and all its descendants; returns them, root last."""
    try:
        tree = [*root.children(recursive=True), root]
    except psutil.Error:
        tree = [root]
    for p in tree:
        try:
            p.kill()
        except psutil.Error:
            pass
    return tree


def _cffi_backend_dir() -> str:
    import _cffi_backend

    return os.path.dirname(_cffi_backend.__file__)


def _real_python() -> str:
    """The interpreter binary itself: preloading TSan into a wrapper script crashes it."""
    return os.path.realpath(sys.executable)


@atexit.register
def _close_all() -> None:
    for w in list(_live_workers):
        try:
            w.close()
        except Exception:
            pass
