"""Supervision of the process tree: who lives, who is reaped, what is left on disk.

One model for every level (the CLI, its job pool, sanitized workers, reproducer runs):
- every child we start gets its own session and a parent-death signal, so a SIGKILL of
  its parent ends it within moments, and it is registered here until it is reaped;
- every shared-memory file and temp folder we create carries the creating process's pid
  and start time in its name, and is registered until it is removed; files of a process
  that no longer exists are stale and removed by `clean_stale()` (a live run's never);
- `Stop` turns the first SIGINT/SIGTERM into an orderly stop and the second into an
  immediate one that still kills every registered process group and removes every
  registered path (`reap_now()`).

Nothing here knows what a schedule or a campaign is: worker.py and pool.py speak their
own protocols on top.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil

RUN_TAG_ENV = "STRESSCORO_RUN_TAG"  # an extra word in every name, e.g. one test session's
_NAME = re.compile(r"^stresscoro-(?:shared|worker)-p(\d+)c(\d+)-")

_groups: set[int] = set()  # process groups (= session leaders' pids) we started
_paths: set[str] = set()  # files and folders we own
_lock = threading.RLock()  # re-entrant: the second-signal handler may run while it is held
_interrupted = False  # a stop was asked of the work in flight: checkpoint() raises


# -- parent death ------------------------------------------------------------------------


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Ask the kernel to send `sig` when our parent dies; exit now if it already has.

    Linux only (PR_SET_PDEATHSIG); elsewhere the closed pipes still end our children."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if parent is not None and os.getppid() != parent:
        os._exit(3)


def _child_setup(parent: int) -> None:
    # Runs between fork and exec of a bounded child: async-signal-safe calls only.
    die_with_parent(signal.SIGKILL, parent)


# -- owned names -------------------------------------------------------------------------


def _owner_token(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    started = int(psutil.Process(pid).create_time() * 100)
    tag = re.sub(r"[^A-Za-z0-9]", "", os.environ.get(RUN_TAG_ENV, ""))[:32]
    return f"p{pid}c{started}-{tag or 'x'}-"


def shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def owned_file(kind: str, directory: str | None) -> tuple[int, str]:
    """mkstemp under a name that says who owns it; registered until `release(path)`."""
    fd, path = tempfile.mkstemp(prefix=f"stresscoro-{kind}-{_owner_token()}", dir=directory)
    with _lock:
        _paths.add(path)
    return fd, path


def owned_dir(kind: str) -> str:
    """mkdtemp in the temp folder under a name that says who owns it."""
    path = tempfile.mkdtemp(prefix=f"stresscoro-{kind}-{_owner_token()}")
    with _lock:
        _paths.add(path)
    return path


def remove_path(path: str) -> None:
    """Remove an owned file or folder (gone already is fine) and forget it."""
    with _lock:
        _paths.discard(path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _owner_alive(pid: int, started: int) -> bool:
    try:
        return abs(int(psutil.Process(pid).create_time() * 100) - started) <= 1
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot tell: keep it


def stale_paths(roots: tuple[str | None, ...] | None = None) -> list[str]:
    """Our files and folders whose owning process is gone (pid reuse is told apart by
    the start time in the name)."""
    found = []
    for root in roots or (shm_dir(), tempfile.gettempdir()):
        if root is None:
            continue
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            m = _NAME.match(name)
            if m and not _owner_alive(int(m.group(1)), int(m.group(2))):
                found.append(os.path.join(root, name))
    return found


_cleaned_once = False


def clean_stale(once: bool = False) -> list[str]:
    """Remove what killed runs left behind; never a live run's. With `once`, only the
    first call in this process does the work (it lists two directories)."""
    global _cleaned_once
    if once and _cleaned_once:
        return []
    _cleaned_once = True
    gone = stale_paths()
    for path in gone:
        remove_path(path)
    return gone


# -- process groups ------------------------------------------------------------------------


def register_group(pgid: int) -> None:
    with _lock:
        _groups.add(pgid)


def forget_group(pgid: int) -> None:
    with _lock:
        _groups.discard(pgid)


def kill_tree(root: psutil.Process) -> list[psutil.Process]:
    """SIGKILL `root` and all its descendants (enumerated first, before any of them dies
    and is reparented); returns them, root last."""
    try:
        tree = [*root.children(recursive=True), root]
    except psutil.Error:
        tree = [root]
    for p in tree:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return tree


def kill_group(pgid: int) -> None:
    """SIGKILL a session we started: its leader's tree, then whatever is left in the group."""
    with contextlib.suppress(psutil.Error):
        kill_tree(psutil.Process(pgid))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_now() -> None:
    """Kill every registered process group and remove every registered path, without
    waiting for anything: the last thing before an immediate exit."""
    with _lock:
        groups, paths = list(_groups), list(_paths)
    for pgid in groups:
        kill_group(pgid)
    for pgid in groups:  # our direct children: reaped, so that their files count as stale
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pgid, 0)
    for path in paths:
        remove_path(path)
    clean_stale()


# -- stop requests ------------------------------------------------------------------------


def interrupt() -> None:
    """Ask the work in flight to unwind: raise KeyboardInterrupt now (from a signal
    handler) and at every later checkpoint(). The raise from a handler alone is not
    enough: it lands wherever the main thread is, and there it may be swallowed (a gc
    callback or a __del__ prints "Exception ignored" and goes on)."""
    global _interrupted
    _interrupted = True
    if getattr(sys.unraisablehook, "__wrapped__", None) is None:
        sys.unraisablehook = _quiet_when_interrupted(sys.unraisablehook)
    raise KeyboardInterrupt


def _quiet_when_interrupted(hook):
    """An unraisable-exception hook that keeps quiet about the KeyboardInterrupt of a
    stop in progress (checkpoint() raises it again) and passes on everything else."""
    def quiet(unraisable) -> None:
        if not (_interrupted and unraisable.exc_type is KeyboardInterrupt):
            hook(unraisable)

    quiet.__wrapped__ = hook
    return quiet


def checkpoint() -> None:
    """Raise KeyboardInterrupt if interrupt() was called and the stop has not ended;
    loops that run for long call it between units of work (each schedule, each poll)."""
    if _interrupted:
        raise KeyboardInterrupt


def end_interrupt() -> None:
    """The work that was asked to unwind has unwound."""
    global _interrupted
    _interrupted = False


class Stop:
    """What SIGINT and SIGTERM mean to a run.

    Invariants: the first signal is remembered (`signum`) and, inside `interruptible()`,
    raises KeyboardInterrupt in the main thread so the work in flight unwinds through
    its cleanups; outside it, the run polls `requested`. The second signal kills every
    registered process group, removes every registered path and exits at once with
    128 + the first signal's number, also after the block was left (the run is
    finishing). Installed in the main thread only."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._raise = 0
        self._saved: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def __enter__(self) -> "Stop":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        end_interrupt()
        if self.requested:
            return  # stopping: a further signal still means "exit at once", with our code
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    @contextlib.contextmanager
    def interruptible(self):
        """Within this block the first signal raises KeyboardInterrupt."""
        if self.requested:
            raise KeyboardInterrupt
        self._raise += 1
        try:
            yield
        finally:
            self._raise -= 1

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            if self._raise:
                interrupt()
            return
        try:
            os.write(2, b"stresscoro: second interrupt: stopping at once\n")
        except OSError:
            pass
        reap_now()
        os._exit(self.exit_code)


# -- bounded runs of other programs ---------------------------------------------------------


@dataclasses.dataclass
class Bounded:
    """How a program run under `run_bounded` ended."""

    status: str  # "exited", "hang" (timeout), "memory" (cap)
    returncode: int | None  # negative: killed by that signal (Popen's convention)
    stdout: str
    stderr: str
    elapsed_s: float
    peak_mb: float

    @property
    def signal_name(self) -> str | None:
        rc = self.returncode
        if rc is None or self.status != "exited":
            return None
        if rc < 0 and -rc in signal.Signals._value2member_map_:
            return signal.Signals(-rc).name
        if rc > 128 and rc - 128 in signal.Signals._value2member_map_:
            return signal.Signals(rc - 128).name  # through a shell that did not exec
        return None


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_bounded(argv: list[str], *, timeout_s: float | None, memory_mb: int | None = None,
                env: dict[str, str] | None = None, cwd: str | None = None,
                poll_s: float = 0.05) -> Bounded:
    """Run `argv` in its own session, dying with us, its whole tree killed and reaped when
    it outlives `timeout_s`, when the resident memory of the tree passes `memory_mb`, or
    when we are interrupted (the interrupt is re-raised after the kill)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", env=env, cwd=cwd,
                            start_new_session=True,
                            preexec_fn=lambda parent=os.getpid(): _child_setup(parent))
    register_group(proc.pid)
    watched = psutil.Process(proc.pid)
    status, peak = "exited", 0
    out_parts: list[str] = []
    err_parts: list[str] = []
    try:
        while True:
            checkpoint()
            try:
                out, err = proc.communicate(timeout=poll_s)
                out_parts.append(out or "")
                err_parts.append(err or "")
                break
            except subprocess.TimeoutExpired:
                pass
            if memory_mb is not None:
                rss = _tree_rss(watched)
                peak = max(peak, rss)
                if rss > memory_mb * 1024 * 1024:
                    status = "memory"
            if status == "exited" and timeout_s is not None and time.monotonic() - t0 > timeout_s:
                status = "hang"
            if status != "exited":
                kill_group(proc.pid)
                out, err = proc.communicate()
                out_parts.append(out or "")
                err_parts.append(err or "")
                clean_stale()  # what the killed program's own children had created
                break
    except BaseException:
        kill_group(proc.pid)
        with contextlib.suppress(Exception):
            proc.communicate(timeout=5)
            clean_stale()
        raise
    finally:
        forget_group(proc.pid)
    return Bounded(status=status, returncode=proc.returncode, stdout="".join(out_parts),
                   stderr="".join(err_parts), elapsed_s=time.monotonic() - t0,
                   peak_mb=peak / (1024 * 1024))

