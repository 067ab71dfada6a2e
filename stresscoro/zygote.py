"""A worker's processes: a zygote and the runner forked from it; who lives, who is reaped.

worker.py speaks the protocol (what is sent, what comes back); this module only starts,
watches and ends the processes, on top of supervise.py's process groups.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from . import supervise

WORKER_MAIN = Path(__file__).with_name("_worker_main.py")


class Zygote:
    """A zygote process (stresscoro/_worker_main.py) and at most one runner forked from it.

    Invariants: the zygote leads its own session, dies with this process
    (PR_SET_PDEATHSIG), and stays registered with supervise until kill() has reaped it;
    a runner that dies or is killed is reaped by the zygote, which reports the wait
    status on the control socket; after kill() nothing of the session is left.
    """

    def __init__(self) -> None:
        self.proc: psutil.Popen | None = None
        self.control: socket.socket | None = None
        self.runner: psutil.Process | None = None
        self._buf = b""
        self.peak_rss = 0  # bytes: the largest runner RSS seen by runner_rss()
        self._gone_cpu_s = 0.0  # CPU seconds of zygotes already killed, their runners included

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, args: list[str], env: dict[str, str], output, timeout_s: float) -> str | None:
        """Start `_worker_main.py args... CONTROL_FD PARENT_PID`, its stdout and stderr
        going to `output`; returns its hello line, or None if it did not say hello."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [real_python(), "-S", "-E", str(WORKER_MAIN), *args, str(theirs.fileno()),
                str(os.getpid())]
        try:
            self.proc = psutil.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                     env=env, pass_fds=(theirs.fileno(),), start_new_session=True)
        finally:
            theirs.close()
        supervise.register_group(self.proc.pid)
        self.control, self._buf = ours, b""
        return self.line(timeout_s)

    def fork_runner(self, timeout_s: float) -> tuple[int, int] | None:
        """Fork a runner that serves requests over two new pipes; returns our ends
        (request write end, reply read end), or None if the zygote could not."""
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            socket.send_fds(self.control, [b"fork"], [request_r, reply_w])
        except OSError:
            pass  # the zygote is gone; the read below says so
        finally:
            os.close(request_r)
            os.close(reply_w)
        line = self.line(timeout_s)
        if line is None or not line.startswith("pid "):
            os.close(request_w)
            os.close(reply_r)
            return None
        self.runner = psutil.Process(int(line.split()[1]))
        return request_w, reply_r

    def line(self, timeout_s: float) -> str | None:
        """One line from the zygote, or None if it died or said nothing in time."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.control is None:
                return None
            ready, _, _ = select.select([self.control], [], [], min(left, 0.1))
            if not ready:
                if not self.alive():
                    return None
                continue
            chunk = self.control.recv(4096)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def runner_rss(self) -> int:
        """The runner's resident bytes (the runner alone: its children are short-lived
        symbolizers, and walking /proc for them costs more than a whole schedule)."""
        if self.runner is None:
            return 0
        try:
            rss = self.runner.memory_info().rss
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def cpu_seconds(self) -> float:
        """CPU seconds of every zygote this object started and of all their runners: a
        runner the zygote reaped counts in the zygote's children's times."""
        return self._gone_cpu_s + _cpu_seconds(self.proc, self.runner)

    def runner_exit(self) -> tuple[int | None, str | None]:
        """How the runner ended, as the zygote saw it through waitpid: (exit code, None)
        or (None, signal name). A zygote that does not say is killed (start over)."""
        line = self.line(timeout_s=10)
        self.runner = None
        if line is None or not line.startswith("exit "):
            self.kill()
            return None, "SIGKILL"
        code = os.waitstatus_to_exitcode(int(line.split()[1]))
        if code < 0:
            return None, signal.Signals(-code).name
        return code, None

    def kill_runner(self) -> tuple[int | None, str | None]:
        """Kill the runner and whatever it started; the zygote reaps it and says how."""
        if self.runner is not None:
            tree = supervise.kill_tree(self.runner)
            psutil.wait_procs(tree[:-1], timeout=5)  # the runner itself is the zygote's to reap
        return self.runner_exit()

    def kill(self) -> None:
        """Kill the whole session (zygote, runner, their children) and reap it."""
        self._gone_cpu_s += _cpu_seconds(self.proc, self.runner)
        proc, self.proc, self.runner = self.proc, None, None
        if proc is not None:
            tree = supervise.kill_tree(proc)  # enumerated before anything dies and gets reparented
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # and whatever escaped the enumeration
            except (ProcessLookupError, PermissionError):
                pass
            psutil.wait_procs(tree, timeout=5)
            try:
                proc.wait(timeout=5)
            except (psutil.Error, ChildProcessError, subprocess.TimeoutExpired):
                pass
            supervise.forget_group(proc.pid)
        if self.control is not None:
            self.control.close()
            self.control = None


def _cpu_seconds(zygote: psutil.Process | None, runner: psutil.Process | None) -> float:
    total = 0.0
    for proc, with_reaped in ((zygote, True), (runner, False)):
        if proc is None:
            continue
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + ((t.children_user + t.children_system) if with_reaped else 0.0)
    return total


def real_python() -> str:
    """The interpreter binary itself: preloading TSan into a wrapper script crashes it."""
    return os.path.realpath(sys.executable)
