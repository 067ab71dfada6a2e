"""Worker supervision: every way a schedule can take a worker down is reported as what
it is, blamed on the right op, costs one respawn, and leaves no process behind.

The target is tests/adapters/misbehave.cpp: each factory makes a task whose first
resume misbehaves (null write, abort, terminate, endless spin, endless allocation).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from stresscoro import reproducer, supervise
from stresscoro.build import BuildOptions, build_target
from stresscoro.session import TargetSession
from stresscoro.schedule import Schedule, make, op
from stresscoro.targets import from_adapter

ADAPTER = Path(__file__).parent / "adapters" / "misbehave.cpp"
REPO = Path(__file__).resolve().parent.parent
STRESSCORO = Path(sys.executable).with_name("stresscoro")
SANITIZERS = ("asan", "none")
FACTORY = {"fine": 0, "segfault": 1, "abort": 2, "terminate": 3, "hang": 4, "hog": 5, "throws": 6,
           "assertion": 7}
EXPECTED_KIND = {
    "segfault": "crash:SIGSEGV",  # under ASan: its "SEGV on unknown address" report
    "abort": "crash:SIGABRT",
    "terminate": "crash:SIGABRT",
    "hang": "hang",
    "hog": "out-of-memory",
    "assertion": "crash:SIGABRT",
}
HANG_TIMEOUT_S = 1.5
PATIENT_TIMEOUT_S = 120.0  # crash and memory runs must never be mistaken for a hang
# An idle worker is about 20 MiB resident under ASan and 12 MiB without a sanitizer.
MEMORY_CAP_MB = 600
WORKER_MAIN = "_worker_main.py"


def schedule(what: str) -> Schedule:
    return Schedule(target="misbehave", ops=(make(0, factory=FACTORY[what]), op("resume", 0)))


@pytest.fixture(scope="module")
def target():
    """The misbehave target, compiled once per sanitizer for this module."""
    t = from_adapter(ADAPTER)
    assert t.name == "misbehave" and t.sanitizers == SANITIZERS
    for sanitizer in SANITIZERS:
        build_target(t.adapter, BuildOptions(sanitizer=sanitizer, include_dirs=t.include_dirs,
                                             defines=t.defines, cxxflags=t.cxxflags), name=t.name)
    return t


def _worker_descendants() -> list[psutil.Process]:
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any(WORKER_MAIN in arg for arg in p.cmdline()):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            found.append(p)  # cannot tell: count it
    return found


def _gone(proc: psutil.Process) -> bool:
    """Dead: no longer running (same pid and start time), or a zombie nobody reaped yet."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(proc: psutil.Process, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(proc):
            return True
        time.sleep(0.02)
    return _gone(proc)


def _wait_for_worker(parent: psutil.Process, timeout_s: float = 30.0) -> psutil.Process:
    """The runner under `parent`: the schedule-running process forked by the worker's
    zygote, once both exist (the first build compiles first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in parent.children(recursive=True):
            try:
                if (any(WORKER_MAIN in arg for arg in p.cmdline())
                        and any(WORKER_MAIN in arg for arg in p.parent().cmdline())):
                    return p
            except (psutil.Error, AttributeError):
                continue
        if not parent.is_running():
            break
        time.sleep(0.02)
    pytest.fail(f"no {WORKER_MAIN} process appeared under pid {parent.pid}")


def _wait_spinning(worker: psutil.Process, timeout_s: float = 30.0) -> None:
    """Wait until the worker burns CPU in the "hang" task: it is running the schedule and
    cannot notice a closed request pipe, so only a kill ends it."""
    start = sum(worker.cpu_times()[:2])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(worker.cpu_times()[:2]) - start > 0.3:
            return
        time.sleep(0.05)
    pytest.fail(f"worker {worker.pid} never started spinning in the hang task")


def _kill_quietly(proc: psutil.Process | subprocess.Popen) -> None:
    try:
        proc.kill()
    except (psutil.Error, ProcessLookupError):
        pass


@pytest.mark.parametrize("sanitizer", SANITIZERS)
@pytest.mark.parametrize("what", list(EXPECTED_KIND))
def test_misbehaviour_is_reported_and_worker_replaced(target, sanitizer, what):
    timeout = HANG_TIMEOUT_S if what == "hang" else PATIENT_TIMEOUT_S
    session = TargetSession(target, sanitizer, timeout_s=timeout, memory_mb=MEMORY_CAP_MB)
    try:
        session.open()
        assert session.factory_names == list(FACTORY)
        first = psutil.Process(session.worker.pid)
        starts = session.worker.starts

        bad = session.run(schedule(what))
        assert not bad.ok, f"{what} under {sanitizer} went unnoticed: {bad.raw}"
        finding = bad.findings[0]
        assert finding.kind == EXPECTED_KIND[what], (finding, bad.raw.stderr[-2000:])
        assert finding.op_index == 1, finding  # the resume, not the make
        assert bad.raw.status == {"hang": "hang", "hog": "memory"}.get(what, "crashed")
        assert _gone(first), f"worker {first.pid} survived {what}"

        good = session.run(schedule("fine"))
        assert good.ok, good.findings
        assert good.raw.status == "ok"
        second = psutil.Process(session.worker.pid)
        assert second.pid != first.pid
        assert session.worker.starts == starts + 1  # exactly one respawn
    finally:
        session.close()
    assert _worker_descendants() == []
    assert _gone(first)
    assert _gone(second)


@pytest.mark.parametrize("sanitizer", SANITIZERS)
def test_clean_runs_reuse_one_worker(target, sanitizer):
    """A correct schedule, including one whose task throws and catches a C++ exception,
    runs clean without respawning: the baseline the crash tests are measured against."""
    with TargetSession(target, sanitizer, timeout_s=PATIENT_TIMEOUT_S,
                       memory_mb=MEMORY_CAP_MB) as session:
        pid = session.worker.pid
        for what in ("fine", "throws", "fine", "throws"):
            outcome = session.run(schedule(what))
            assert outcome.ok, (what, outcome.findings, outcome.raw.stderr[-2000:])
        assert session.worker.pid == pid
        assert session.worker.starts == 1
        worker = psutil.Process(pid)
    assert _worker_descendants() == []
    assert _gone(worker)


def test_ctrl_c_stops_replay_and_reaps_its_worker(target, tmp_path):
    path = tmp_path / "hang.json"
    path.write_text(json.dumps({
        "format": "stresscoro-schedule", "version": 1, "target": "misbehave",
        "ops": [{"op": "make", "slot": 0, "factory": FACTORY["hang"]},
                {"op": "resume", "slot": 0}],
    }))
    # A long timeout: only the interrupt can end this replay early.
    proc = subprocess.Popen([str(STRESSCORO), "replay", str(path), "--adapter", str(ADAPTER),
                             "--timeout", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        worker = _wait_for_worker(psutil.Process(proc.pid))
        _wait_spinning(worker)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out, err)
        assert "interrupted" in err
        assert _wait_gone(worker, 5), f"worker {worker.pid} outlived the interrupted replay"
    finally:
        _kill_quietly(proc)
        proc.wait()
        if worker is not None:
            _kill_quietly(worker)


def test_worker_dies_with_its_killed_parent(target):
    """SIGKILL leaves the parent no chance to clean up: the worker's PR_SET_PDEATHSIG must
    end it, even while it spins in a schedule (so the closed pipe cannot)."""
    script = textwrap.dedent(f"""
        import sys
        from stresscoro.session import TargetSession
        from stresscoro.schedule import Schedule, make, op
        from stresscoro.targets import from_adapter

        session = TargetSession(from_adapter({str(ADAPTER)!r}), "asan", timeout_s=600).open()
        print(session.worker.pid, flush=True)
        session.run(Schedule(target="misbehave",
                             ops=(make(0, factory={FACTORY['hang']}), op("resume", 0))))
        print("the hang ended?", flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env=env)
    worker = None
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"the session did not start: {line!r}"
        worker = psutil.Process(int(line))
        assert psutil.Process(proc.pid) in worker.parents()
        _wait_spinning(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_gone(worker, 5), f"worker {worker.pid} outlived its SIGKILLed parent"
        # Its shared memory and temp folder are stale now: the next start removes them.
        supervise.clean_stale()
        roots = [r for r in (supervise.shm_dir(), tempfile.gettempdir()) if r]
        left = [n for r in roots for n in os.listdir(r) if f"-p{proc.pid}c" in n]
        assert left == [], left
    finally:
        _kill_quietly(proc)
        proc.wait()
        if worker is not None:
            _kill_quietly(worker)


# -- reproducers of crashes with no sanitizer report, and of memory hogs -----------------


def _verified_reproducer(target, sanitizer: str, what: str, tmp_path, **limits):
    """Run the misbehaving schedule, write its reproducers and verify them."""
    s = schedule(what)
    with TargetSession(target, sanitizer, **limits) as session:
        finding = session.run(s).primary
        names = session.factory_names
        options = session.options
    assert finding is not None and finding.kind == EXPECTED_KIND[what], finding
    rep = reproducer.write(s, target, options, finding, names, tmp_path, **limits)
    return finding, reproducer.verify(rep, finding, **limits)


@pytest.mark.parametrize("sanitizer, what", [("none", "segfault"), ("none", "assertion"),
                                             ("asan", "assertion")])
def test_a_crash_by_signal_is_verified_by_the_same_signal(target, tmp_path, sanitizer, what):
    """No sanitizer report to match: the C++ program dies by the signal itself, and the
    shell execs it, so Python sees a negative return code."""
    finding, rep = _verified_reproducer(target, sanitizer, what, tmp_path,
                                        timeout_s=PATIENT_TIMEOUT_S, memory_mb=MEMORY_CAP_MB)
    assert rep.cpp_kind == finding.kind, rep.notes
    assert rep.python_kind == finding.kind, rep.notes
    assert rep.verified, rep.notes


@pytest.mark.parametrize("sanitizer", SANITIZERS)
def test_a_memory_hog_is_out_of_memory_every_time_and_its_reproducer_is_capped(
        target, tmp_path, sanitizer):
    limits = dict(timeout_s=PATIENT_TIMEOUT_S, memory_mb=MEMORY_CAP_MB)
    with TargetSession(target, sanitizer, **limits) as session:
        kinds = [session.run(schedule("hog")).primary.kind for _ in range(5)]
    assert kinds == ["out-of-memory"] * 5
    # A hog that is also slow: the timeout comes first, the cap still decides.
    with TargetSession(target, sanitizer, timeout_s=0.5, memory_mb=64) as session:
        assert session.run(schedule("hog")).primary.kind == "out-of-memory"
    t0 = time.monotonic()
    finding, rep = _verified_reproducer(target, sanitizer, "hog", tmp_path, **limits)
    # The C++ program would take 6 GiB and then spin forever: only the cap stops it.
    assert rep.cpp_kind == "out-of-memory", rep.notes
    assert rep.verified, rep.notes
    assert time.monotonic() - t0 < PATIENT_TIMEOUT_S
