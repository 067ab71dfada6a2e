"""Run calls in parallel child processes that are stopped, and reaped, on request.

The parent keeps the supervision (supervise.py): each child is a fresh interpreter
(`python -m stresscoro._pool_child`) in its own session that dies with its parent; it
reads calls from its stdin and answers on a pipe of its own. The protocol is one frame
each way per call: a 4-byte length, then a pickle (both ends are this package).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import supervise
from ._worker_main import read_frame, write_frame

GRACE_S = 5.0  # how long a stopped child may take to unwind before it is killed


@dataclasses.dataclass
class _Child:
    proc: subprocess.Popen
    results: int  # the read end of its answer pipe
    busy: int | None = None  # index of the call it runs


class JobPool:
    """Up to `size` children run `calls` (picklable function, args); each answer goes to
    `on_result(index, status, value)` as it arrives, status "ok" (value: the return
    value), "error" (value: a message) or "interrupted".

    Invariants: a call runs at most once; after run() returns every child has exited
    and been reaped. When `stop` is requested no call starts; running ones get SIGTERM
    and GRACE_S to answer, then their whole session is killed."""

    def __init__(self, size: int, stop: supervise.Stop, grace_s: float = GRACE_S):
        self.size = size
        self.stop = stop
        self.grace_s = grace_s
        self._children: list[_Child] = []

    def run(self, calls: Sequence[tuple[Callable, tuple]],
            on_result: Callable[[int, str, Any], None]) -> None:
        pending = list(range(len(calls)))
        try:
            while (pending or self._busy()) and not self.stop.requested:
                while pending and len(self._children) < min(self.size, len(pending) + len(self._busy())):
                    self._spawn()
                for child in self._children:
                    if child.busy is None and pending:
                        child.busy = pending.pop(0)
                        fn, args = calls[child.busy]
                        self._send(child, (child.busy, fn, args))
                self._collect(on_result, timeout=0.1)
            if self.stop.requested:
                for child in self._busy():
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + self.grace_s
                while self._busy() and time.monotonic() < deadline:
                    self._collect(on_result, timeout=0.1)
        finally:
            self._close()

    def _busy(self) -> list[_Child]:
        return [c for c in self._children if c.busy is not None]

    def _spawn(self) -> None:
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stresscoro._pool_child", str(os.getpid()), str(w)],
                stdin=subprocess.PIPE, pass_fds=(w,), start_new_session=True)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        supervise.register_group(proc.pid)
        self._children.append(_Child(proc, r))

    def _send(self, child: _Child, message: tuple) -> None:
        try:
            write_frame(child.proc.stdin.fileno(), pickle.dumps(message))
        except BrokenPipeError:
            pass  # it died; _collect sees the end of its answers

    def _collect(self, on_result, timeout: float) -> None:
        fds = {c.results: c for c in self._busy()}
        if not fds:
            time.sleep(min(timeout, 0.01))
            return
        ready, _, _ = select.select(list(fds), [], [], timeout)
        for fd in ready:
            child = fds[fd]
            frame = read_frame(fd)
            index, child.busy = child.busy, None
            if frame is None:
                code = child.proc.wait()
                self._drop(child)
                on_result(index, "error", f"the pool process running it died (exit status {code})")
                continue
            _, status, value = pickle.loads(frame)
            on_result(index, status, value)

    def _drop(self, child: _Child) -> None:
        self._children.remove(child)
        self._reap(child, self.grace_s)

    def _reap(self, child: _Child, wait_s: float) -> None:
        with contextlib.suppress(OSError):
            child.proc.stdin.close()
        try:
            child.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass
        supervise.kill_group(child.proc.pid)  # whatever it left in its session
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=5)
        supervise.forget_group(child.proc.pid)
        with contextlib.suppress(OSError):
            os.close(child.results)

    def _close(self) -> None:
        """Idle children exit at the end of their stdin; stopped ones were given their
        grace already. Then what killed children left on disk is cleaned."""
        children, self._children = self._children, []
        for child in children:
            with contextlib.suppress(OSError):
                child.proc.stdin.close()
        deadline = time.monotonic() + (1.0 if self.stop.requested else self.grace_s)
        for child in children:
            self._reap(child, max(0.0, deadline - time.monotonic()))
        supervise.clean_stale()
