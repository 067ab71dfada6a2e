"""Nothing lost, nothing left behind: `stresscoro fuzz --jobs 2` interrupted by SIGINT,
SIGTERM, a double SIGINT or a SIGKILL; stale files cleaned without touching a live run's.

The CLI runs for real in its own session. Its process tree is sampled while it runs
(children reparent once their parent dies: the pids are recorded early and checked
afterwards). Every run gets its own run tag (an extension of this test session's), so
its files in /dev/shm and the temp folder are told apart from other runs'.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from stresscoro import supervise

STRESSCORO = Path(sys.executable).with_name("stresscoro")
REPORT = re.compile(r"^\[\s*\d+/\d+\] (\S+?)/(\S+?): ")
WORKER_MAIN = "_worker_main.py"
POOL_CHILD = "stresscoro._pool_child"


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _files_with(tag: str) -> list[str]:
    found = []
    for root in (supervise.shm_dir(), tempfile.gettempdir()):
        if root:
            found += [os.path.join(root, n) for n in os.listdir(root)
                      if n.startswith("stresscoro-") and f"-{tag}-" in n]
    return found


class FuzzRun:
    """`stresscoro fuzz --jobs 2` on the built-in suite, watched while it runs."""

    def __init__(self, tmp_path: Path, max_examples: int, jobs: int = 2):
        self.jobs = jobs
        self.tag = os.environ.get(supervise.RUN_TAG_ENV, "t") + uuid.uuid4().hex[:6]
        self.json = tmp_path / "results.json"
        env = dict(os.environ, **{supervise.RUN_TAG_ENV: self.tag})
        self.proc = subprocess.Popen(
            [str(STRESSCORO), "fuzz", "--jobs", str(jobs), "--seed", "1", "--max-examples", str(max_examples),
             "--json", str(self.json), "--out", str(tmp_path / "out")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
            start_new_session=True)
        self.top = psutil.Process(self.proc.pid)
        self.lines: list[str] = []
        self.err: list[str] = []
        self.seen: dict[int, psutil.Process] = {}
        self._readers = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def reports(self) -> set[tuple[str, str]]:
        return {m.groups() for line in list(self.lines) if (m := REPORT.match(line))}

    def sample(self) -> None:
        try:
            for p in self.top.children(recursive=True):
                self.seen.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def _cmdlines(self) -> list[str]:
        out = []
        for p in self.seen.values():
            try:
                out.append(" ".join(p.cmdline()))
            except psutil.Error:
                continue
        return out

    def wait_until_busy(self, reported: bool = True, timeout_s: float = 240) -> set[tuple[str, str]]:
        """Until both pool processes and a sanitized worker under them have been seen,
        and (with `reported`) a campaign has finished."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.sample()
            cmds = self._cmdlines()
            pool = sum(POOL_CHILD in c for c in cmds)
            if ((self.reports() or not reported) and pool >= (self.jobs if self.jobs > 1 else 0)
                    and any(WORKER_MAIN in c for c in cmds)):
                return self.reports()
            assert self.proc.poll() is None, "".join(self.lines + self.err)
            time.sleep(0.05)
        pytest.fail("the suite never got busy:\n" + "".join(self.lines + self.err))

    def finish(self, timeout_s: float) -> tuple[int, float]:
        t0 = time.monotonic()
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.sample()
            pytest.fail(f"still running {timeout_s} s after the signal:\n" + "".join(self.err[-20:]))
        for t in self._readers:
            t.join(timeout=15)
        return code, time.monotonic() - t0

    def survivors(self, within_s: float) -> list[str]:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and not all(_gone(p) for p in self.seen.values()):
            time.sleep(0.1)
        alive = []
        for p in self.seen.values():
            if not _gone(p):
                try:
                    alive.append(f"{p.pid} (parent {p.ppid()}, {p.status()}, {p.num_threads()} "
                                 f"threads) {' '.join(p.cmdline())}")
                except psutil.Error:
                    continue
        return alive

    def kill(self) -> None:
        for p in [*self.seen.values(), self.top]:
            if not _gone(p):
                try:
                    p.kill()
                except psutil.Error:
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def fuzz_run(tmp_path):
    runs = []

    def start(max_examples: int, jobs: int = 2) -> FuzzRun:
        runs.append(FuzzRun(tmp_path, max_examples, jobs))
        return runs[-1]

    yield start
    for run in runs:
        run.kill()
    supervise.clean_stale()


@pytest.mark.parametrize("signals, code, jobs", [
    ((signal.SIGINT,), 130, 2),
    ((signal.SIGTERM,), 143, 2),
    ((signal.SIGINT, signal.SIGINT), 130, 2),
    ((signal.SIGINT,), 130, 1),
], ids=["sigint", "sigterm", "double-sigint", "sigint-one-job"])
def test_an_interrupted_suite_keeps_its_results_and_leaves_nothing(fuzz_run, signals, code, jobs):
    # Campaigns of a few seconds each: some finish before the signal, others are cut short.
    run = fuzz_run(max_examples=500, jobs=jobs)
    before = run.wait_until_busy()
    for k, sig in enumerate(signals):
        if k:
            time.sleep(0.3)
        os.killpg(run.proc.pid, sig)  # as a terminal's Ctrl-C does: the whole group
        run.sample()
    exit_code, took = run.finish(timeout_s=10)
    assert exit_code == code, "".join(run.err[-30:])
    assert "Traceback" not in "".join(run.err), "".join(run.err)

    data = json.loads(run.json.read_text())
    in_json = {(r["target"], r["sanitizer"]) for r in data["results"]}
    assert before <= in_json, "a campaign finished before the signal is missing from the JSON"
    assert data["complete"] is False
    assert len(in_json) < data["campaigns"], "the suite was not interrupted at all"
    if len(signals) == 1:
        assert in_json == run.reports(), "the JSON and the printed results differ"
        assert data["interrupted"] == signal.Signals(signals[0]).name
        assert "interrupted" in "".join(run.lines)

    assert run.survivors(within_s=3) == []
    assert _files_with(run.tag) == []


def test_after_sigkill_of_the_top_process_every_descendant_exits_by_itself(fuzz_run):
    # Campaigns far longer than the test: only the kill can end them.
    run = fuzz_run(max_examples=1_000_000)
    run.wait_until_busy(reported=False)
    time.sleep(1)
    run.sample()
    run.top.kill()
    run.proc.wait(timeout=10)
    assert run.survivors(within_s=5) == []
    # The pool processes saw their parent die and removed what they had created; what
    # the killed top process itself may have left is stale, and the next start cleans it.
    assert [f for f in _files_with(run.tag) if f"-p{run.proc.pid}c" not in f] == []
    supervise.clean_stale()
    assert _files_with(run.tag) == []


def test_an_interrupt_swallowed_where_it_landed_is_raised_again_at_the_next_checkpoint(monkeypatch):
    printed = []  # what Python would print as "Exception ignored in ...: Traceback ..."
    monkeypatch.setattr(sys, "unraisablehook", printed.append)

    class RaisesInDel:
        def __del__(self):
            supervise.interrupt()

    class FailsInDel:
        def __del__(self):
            raise ValueError("not ours")

    try:
        RaisesInDel()
        FailsInDel()
        assert [u.exc_type for u in printed] == [ValueError]
        with pytest.raises(KeyboardInterrupt):
            supervise.checkpoint()
        with pytest.raises(KeyboardInterrupt):
            supervise.checkpoint()  # until the stop has ended
    finally:
        supervise.end_interrupt()
    supervise.checkpoint()


def test_stale_files_are_removed_only_when_their_owner_is_dead(tmp_path, monkeypatch):
    monkeypatch.setenv(supervise.RUN_TAG_ENV, os.environ.get(supervise.RUN_TAG_ENV, "t") + "stale")
    # A file of a live process (this one) and a file of a process that has exited.
    fd, mine = supervise.owned_file("shared", None)
    os.close(fd)
    child = subprocess.Popen([sys.executable, "-c",
                              "from stresscoro import supervise; import os; "
                              "fd, p = supervise.owned_file('shared', None); os.close(fd); "
                              "d = supervise.owned_dir('worker'); print(p); print(d)"],
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    out, _ = child.communicate(timeout=60)
    theirs = out.split()
    assert len(theirs) == 2 and all(os.path.exists(p) for p in theirs), out
    try:
        removed = supervise.clean_stale()
        assert set(theirs) <= set(removed)
        assert not any(os.path.exists(p) for p in theirs)
        assert os.path.exists(mine) and mine not in removed
    finally:
        supervise.remove_path(mine)
