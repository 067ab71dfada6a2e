"""The pytest face: fuzz campaigns as pytest tests, `--stresscoro-*` options, reports.

A test file declares what to fuzz; each (target, sanitizer) becomes one test:

    from stresscoro.pytest_plugin import fuzz_tests
    test_mylib = fuzz_tests("adapter.cpp", include_dirs=["include"])

Each such test is an ordinary Hypothesis test (so HypoFuzz can run it too); under pytest
the plugin runs it as a stresscoro campaign instead: in rounds past every shrunk finding,
within the time budget, with reproducers. For properties of your own, the fixture
`stresscoro_session` hands a test an open TargetSession for the target named by its
`@pytest.mark.stresscoro(...)` marker.

Loading this module costs nothing: it imports only pytest and the standard library, and
the rest of stresscoro (cffi, Hypothesis settings, builds) only inside a test that uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

HELP = {
    "sanitizers": "comma-separated sanitizers for every target (asan, tsan, ubsan, none); "
                  "default: each target's own list",
    "max_examples": "schedules generated per campaign (default: the profile's)",
    "budget": "seconds per campaign, reports included; a campaign ends at its budget with "
              "what it found (default: no limit)",
    "out": "directory for reproducers (default: stresscoro-out)",
    "profile": "settings profile: dev 300, ci 1000, nightly 20000 examples (default: "
               "$STRESSCORO_PROFILE, else ci when $CI is set, else dev)",
    "database": "Hypothesis example database directory shared by all campaigns and xdist "
                "workers, or 'none' (default: Hypothesis's default database)",
    "seed": "Hypothesis seed, for a reproducible search (turns the default database off)",
    "sarif": "write every finding of the session to this SARIF 2.1.0 file",
    "markdown": "write a markdown summary of the session to this file (for a CI job summary)",
    "timeout": "seconds one schedule may run before it counts as a hang (default 10)",
}
SANITIZERS = ("asan", "tsan", "ubsan", "none")
PROFILES = ("dev", "ci", "nightly")
MARKER = ("stresscoro(target, *, include_dirs=(), defines=(), cxxflags=(), sanitizer=None): "
          "the target (built-in name or adapter path) whose open TargetSession the "
          "stresscoro_session fixture hands this test")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stresscoro", "stresscoro: fuzz C++ coroutine ownership rules")
    for key, text in HELP.items():
        flag = "--stresscoro-" + key.replace("_", "-")
        group.addoption(flag, dest=f"stresscoro_{key}", default=None, metavar=key.upper(),
                        help=f"{text}; ini: stresscoro_{key}")
        parser.addini(f"stresscoro_{key}", text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    config.pluginmanager.register(_Reporter(config), "stresscoro-reporter")


def _setting(config: pytest.Config, key: str) -> str | None:
    value = config.getoption(f"stresscoro_{key}")
    if value is None:
        value = config.getini(f"stresscoro_{key}")
    return str(value).strip() if value not in (None, "") else None


def _usage(key: str, value: str, allowed: str) -> pytest.UsageError:
    return pytest.UsageError(f"stresscoro: --stresscoro-{key.replace('_', '-')} (ini stresscoro_{key}) "
                             f"is {value!r}; expected {allowed}.")


def _number(config, key: str, kind, low, allowed: str):
    text = _setting(config, key)
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise _usage(key, text, allowed) from None
    if not value >= low or value == float("inf"):
        raise _usage(key, text, allowed)
    return value


class Options:
    """The plugin's settings, read once per session from options and ini."""

    def __init__(self, config: pytest.Config) -> None:
        text = _setting(config, "sanitizers")
        self.sanitizers = tuple(s.strip() for s in text.split(",") if s.strip()) if text else None
        if self.sanitizers is not None and (not self.sanitizers
                                            or any(s not in SANITIZERS for s in self.sanitizers)):
            raise _usage("sanitizers", text, f"a comma-separated list of {', '.join(SANITIZERS)}")
        self.max_examples = _number(config, "max_examples", int, 1, "a whole number of at least 1")
        self.budget_s = _number(config, "budget", float, 1e-9, "a positive number of seconds")
        self.timeout_s = _number(config, "timeout", float, 1e-9, "a positive number of seconds") or 10.0
        self.seed = _number(config, "seed", int, -2**63, "a whole number")
        self.profile = _setting(config, "profile") or os.environ.get("STRESSCORO_PROFILE") or (
            "ci" if os.environ.get("CI") else "dev")
        if self.profile not in PROFILES:
            raise _usage("profile", self.profile, ", ".join(PROFILES))
        self.out = Path(_setting(config, "out") or "stresscoro-out")
        self.database = _setting(config, "database")
        self.sarif = _setting(config, "sarif")
        self.markdown = _setting(config, "markdown")

    def hypothesis_database(self):
        if self.database is None:
            return "default"
        if self.database.lower() == "none":
            return None
        from hypothesis.database import DirectoryBasedExampleDatabase

        return DirectoryBasedExampleDatabase(self.database)


_OPTIONS = pytest.StashKey[Options]()


def _options(config: pytest.Config) -> Options:
    if _OPTIONS not in config.stash:
        config.stash[_OPTIONS] = Options(config)
    return config.stash[_OPTIONS]


def pytest_sessionstart(session: pytest.Session) -> None:
    _options(session.config)  # a bad value stops the session before any test runs


# -- declaring campaigns ------------------------------------------------------------------

def fuzz_tests(target: str | os.PathLike, *, name: str | None = None, include_dirs=(),
               defines=(), cxxflags=(), sanitizers=None):
    """A pytest test that fuzzes `target` (a built-in target name, or an adapter .cpp path;
    relative paths start at the calling test file's directory), one test per sanitizer:
    `sanitizers`, else --stresscoro-sanitizers, else the adapter's own list.

    A finding fails the test with the readable report (minimal schedule, location,
    broken rule, reproducer paths). Assign the result to a `test_*` name."""
    from hypothesis import given
    from hypothesis import strategies as st

    from . import targets

    base = Path(sys._getframe(1).f_globals.get("__file__") or ".").resolve().parent
    text = os.fspath(target)
    if text.endswith((".cpp", ".cc", ".cxx")) or os.sep in text:
        resolved = targets.from_adapter(base / text, name=name,
                                        include_dirs=tuple(str(base / d) for d in include_dirs),
                                        defines=tuple(defines), cxxflags=tuple(cxxflags))
    else:
        resolved = targets.get(text)

    def stresscoro_campaign(stresscoro_sanitizer, data):
        campaign = _campaign_for(resolved, stresscoro_sanitizer)
        campaign.check(data.draw(campaign.schedules))

    test = given(data=st.data())(stresscoro_campaign)
    test._stresscoro_target = resolved
    test._stresscoro_sanitizers = tuple(sanitizers) if sanitizers else None
    return test


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    target = getattr(metafunc.function, "_stresscoro_target", None)
    if target is None or "stresscoro_sanitizer" not in metafunc.fixturenames:
        return
    chosen = (metafunc.function._stresscoro_sanitizers or _options(metafunc.config).sanitizers
              or target.sanitizers)
    metafunc.parametrize("stresscoro_sanitizer", chosen)


# Campaigns by (target, sanitizer): the one a running test drives, or, when something
# else runs the Hypothesis test (HypoFuzz), one made on first use and closed at exit.
_active: dict = {}
_lock = threading.Lock()


def _campaign_for(target, sanitizer: str):
    with _lock:
        campaign = _active.get((target, sanitizer))
        if campaign is None:
            from .runner import Campaign

            campaign = _active[(target, sanitizer)] = Campaign(target, sanitizer)
        return campaign


# -- running campaigns ----------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    target = getattr(pyfuncitem.obj, "_stresscoro_target", None)
    if target is None:
        return None
    from .report import finding_lines
    from .runner import Campaign

    opts = _options(pyfuncitem.config)
    sanitizer = pyfuncitem.funcargs["stresscoro_sanitizer"]
    key = (target, sanitizer)
    with _interruptible(pyfuncitem.config), _core_slot(pyfuncitem.config):
        campaign = Campaign(target, sanitizer, timeout_s=opts.timeout_s)
        with _lock:
            _active[key] = campaign
        try:
            campaign.search(max_examples=opts.max_examples, seed=opts.seed, profile=opts.profile,
                            database=opts.hypothesis_database(), budget_s=opts.budget_s,
                            test=pyfuncitem.obj.hypothesis.inner_test,
                            call_kwargs={"stresscoro_sanitizer": sanitizer},
                            # The key HypoFuzz gives the same test: both share one database.
                            database_key=pyfuncitem.nodeid.encode())
            result = campaign.result(out_dir=opts.out, budget_s=opts.budget_s)
        finally:
            with _lock:
                _active.pop(key, None)
            campaign.close()
    data = result.to_json()
    pyfuncitem.stash[_RESULT] = data
    if result.findings:
        head = (f"stresscoro: {len(result.findings)} finding(s) in {target.name} under {sanitizer} "
                f"after {result.examples} examples ({result.shrink_runs} shrink runs, "
                f"{result.elapsed_s:.1f} s)")
        body = []
        for bug in data["findings"]:
            body += [""] + finding_lines(bug)
        pytest.fail("\n".join([head, *body]), pytrace=False)
    return True


_RESULT = pytest.StashKey[dict]()
# outputs.REPRODUCER_DIR_MARKER, spelled out: importing outputs for every directory of
# every suite would make the plugin heavier than it promises (a test holds the two equal).
REPRODUCER_DIR_MARKER = ".stresscoro-out"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    """Skip reproducer directories (outputs.mark_reproducer_dir): their test files fail
    until the bug is fixed; copy one into your tests to keep it."""
    if collection_path.is_dir() and (collection_path / REPRODUCER_DIR_MARKER).is_file():
        return True
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    if call.when == "call" and _RESULT in item.stash:
        # A plain attribute: pytest-xdist sends a report's attributes to the controller.
        outcome.get_result().stresscoro_result = item.stash[_RESULT]


class _Reporter:
    """Collects campaign results where reports arrive (the controller under xdist) and
    writes the session's SARIF and markdown files at its end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "stresscoro_result", None)
        if data is not None:
            self.results.append(data)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            return  # an xdist worker: the controller writes the reports
        opts = self.config.stash.get(_OPTIONS, None)
        if opts is None or not (opts.sarif or opts.markdown):
            return
        import json

        from . import __version__
        from .outputs import write_text_atomically
        from .report import markdown, sarif

        for path, text in ((opts.sarif, lambda: json.dumps(sarif(self.results, tool_version=__version__),
                                                           indent=2) + "\n"),
                           (opts.markdown, lambda: markdown(self.results))):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                write_text_atomically(path, text())


# -- the fixture form ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def _stresscoro_sessions():
    opened: dict = {}
    yield opened
    for s in opened.values():
        s.close()


@pytest.fixture
def stresscoro_session(request: pytest.FixtureRequest, _stresscoro_sessions):
    """An open TargetSession for the target of the test's @pytest.mark.stresscoro marker,
    shared by the tests of a module that name the same target and sanitizer; closed at
    the module's end."""
    mark = request.node.get_closest_marker("stresscoro")
    if mark is None or not mark.args:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the stresscoro_session fixture needs a "
            "@pytest.mark.stresscoro(\"target-or-adapter.cpp\", ...) marker on the test")
    from . import targets
    from .session import TargetSession

    base = Path(request.node.path).parent
    text = os.fspath(mark.args[0])
    if text.endswith((".cpp", ".cc", ".cxx")) or os.sep in text:
        target = targets.from_adapter(
            base / text, include_dirs=tuple(str(base / d) for d in mark.kwargs.get("include_dirs", ())),
            defines=tuple(mark.kwargs.get("defines", ())), cxxflags=tuple(mark.kwargs.get("cxxflags", ())))
    else:
        target = targets.get(text)
    sanitizer = mark.kwargs.get("sanitizer") or target.sanitizers[0]
    key = (target, sanitizer)
    if key not in _stresscoro_sessions:
        _stresscoro_sessions[key] = TargetSession(target, sanitizer,
                                                  timeout_s=_options(request.config).timeout_s).open()
    return _stresscoro_sessions[key]


# -- interrupts and cores -----------------------------------------------------------------------

def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def _interruptible(config: pytest.Config):
    """While a campaign runs: SIGTERM ends it like Ctrl-C (its workers are closed and the
    session winds down), and an xdist worker whose controller died stops too."""
    old = None
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            old = signal.signal(signal.SIGTERM, _raise_interrupt)
    stop = threading.Event()
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(0.5):
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGINT)
                return

    if hasattr(config, "workerinput"):
        threading.Thread(target=watch, name="stresscoro-parent-watch", daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        if old is not None:
            signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _core_slot(config: pytest.Config):
    """Under pytest-xdist, hold one of as many slots as there are cores while a campaign
    runs, so that `-n` above the core count queues campaigns instead of oversubscribing."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        yield
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # xdist gives each worker basetemp/popen-gwN: the slots live in the run's basetemp,
    # which pytest itself prunes.
    basetemp = config.getoption("basetemp")
    root = (Path(basetemp).parent if basetemp else
            Path(tempfile.gettempdir()) / f"stresscoro-slots-{workerinput.get('testrunuid', 'run')}")
    root = root / "stresscoro-core-slots"
    root.mkdir(parents=True, exist_ok=True)
    held = None
    while held is None:
        for i in range(cores):
            f = open(root / f"core-{i}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            held = f
            break
        else:
            time.sleep(0.1)
    try:
        yield
    finally:
        held.close()
