"""Render a failing schedule as a standalone C++ program and a pytest file; verify both."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from . import supervise
from .outputs import mark_reproducer_dir, write_text_atomically
from .build import BuildOptions, compile_flags, resolve_compiler
from .oracle import Finding, parse_sanitizer_report
from .schedule import Op, Schedule
from .targets import Target

# Compiling a reproducer, or starting pytest and building the target for the Python
# one, is not part of the schedule: these allowances come on top of its timeout.
COMPILE_TIMEOUT_S = 300
PYTEST_ALLOWANCE_S = 180
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 4096


@dataclasses.dataclass
class Reproducer:
    cpp: Path
    python: Path
    schedule: Path
    verified: bool = False
    cpp_kind: str | None = None  # what the C++ program showed when re-run
    python_kind: str | None = None  # what the pytest file failed with
    notes: list[str] = dataclasses.field(default_factory=list)
    cpp_output: str = dataclasses.field(default="", repr=False)  # the C++ program's stderr

    def to_json(self) -> dict:
        return {"cpp": str(self.cpp), "python": str(self.python), "schedule": str(self.schedule),
                "verified": self.verified, "cpp_kind": self.cpp_kind,
                "python_kind": self.python_kind, "notes": self.notes}


def stem_for(target: Target, sanitizer: str, finding: Finding, index: int = 1) -> str:
    kind = re.sub(r"[^a-z0-9]+", "_", finding.kind.lower()).strip("_")
    suffix = f"_{index}" if index > 1 else ""
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{target.name}_{sanitizer}_{kind}{suffix}").strip("_")


def reproducer_sanitizer(sanitizer: str, finding: Finding) -> str:
    """The sanitizer the C++ program is built with: the campaign's, except that a leak
    seen by the driver's own accounting needs LeakSanitizer to show standalone."""
    if finding.kind == "leak" and sanitizer in ("none", "ubsan"):
        return "asan"
    return sanitizer


def build_command(options: BuildOptions, cpp: Path, exe: Path) -> str:
    """A shell command that compiles `cpp` exactly as the target's module was compiled
    (with options.sanitizer), links it and runs it."""
    cxx, _ = resolve_compiler(options.compiler)
    flags = compile_flags(options)
    return f"{shlex.join([cxx, *flags, str(cpp), '-o', str(exe), '-lpthread'])} && {shlex.quote(str(exe))}"


def render_cpp(schedule: Schedule, target: Target, sanitizer: str, finding: Finding,
               factory_names: list[str], build_line: str) -> str:
    """Straight-line C++ that replays `schedule` with the driver's semantics: ops that
    the driver would skip (their slot is empty) appear as comments only. Probes live in
    probe slots; the program checks the continuation invariants itself and exits 1
    naming the first it finds broken ("stresscoro invariant: ...")."""
    n_slots = schedule.slots
    probes = any(o.name == "probe" for o in schedule.ops)
    lines = [
        f"// build: {build_line}",
        f"// Reproducer written by stresscoro: {finding.kind} in {target.name} under {sanitizer}.",
        f"// {finding.summary}",
        "#include <stresscoro/preempt.hpp>  // first: the target's atomics become sync points",
        f"#include \"{target.adapter}\"",
        "#include <stresscoro/replay.hpp>",
        "",
        "#include <utility>",
        "",
        "int main() {",
        "    using A = stresscoro_target;",
        f"    stresscoro::replay::slot<A::object> {', '.join(f's{i}' for i in range(n_slots))};",
    ]
    if probes:
        lines.append(f"    stresscoro::replay::probe_slot<A> {', '.join(f'q{i}' for i in range(n_slots))};")
    old_probes = sum(1 for o in schedule.ops if o.name == "await")
    if old_probes:
        lines.append(f"    stresscoro::probe_frame probes[{old_probes}];")
    states = schedule.simulate()
    per_op: list[list[str]] = []
    counter = {"await": 0, "probe": 0}
    rendered = schedule.render(factory_names)
    for i, o in enumerate(schedule.ops):
        before = states[i - 1] if i else {}
        code = _op_cpp(schedule, o, before, counter)
        per_op.append([f"// op {i}: {rendered[i]}"]
                      + (code or ["// (nothing to do: the slot it reads is empty)"]))
    end_state = states[-1] if schedule.ops else {}
    drops = schedule.end_drops()

    def end_turn(thread: int, indent: str) -> list[str]:
        out = []
        if thread == 0:
            out.append(f"{indent}stresscoro::replay::run_pending<A>();")
            if probes:
                objects = ", ".join(f"s{k}" for k in range(n_slots))
                out += [f"{indent}stresscoro::replay::check_lost<A>(q{k}.get(), {objects});"
                        for k, st in sorted(end_state.items()) if st.probe]
        for k in drops[thread]:
            out.append(f"{indent}{'q' if end_state[k].probe else 's'}{k}.reset();")
        return out

    lines.append("    stresscoro::replay::begin<A>();")
    if schedule.threads == 1:
        lines.append("    stresscoro::replay::run_on_stack<A>([&] {")
        for chunk in per_op:
            lines += ["        " + c for c in chunk]
        lines.append("        // End of schedule: run what is pending, drop what is left, newest first.")
        lines += end_turn(0, "        ")
        lines.append("    });")
    else:
        n = len(schedule.ops)
        owners = ", ".join(str(o.thread) for o in schedule.ops)
        taken = ", ".join(f"{p.op}, {p.after}, {p.to}" for p in finding.preemptions)
        if taken:
            lines.append("    // Preemptions (op, after sync point, to thread), as they took effect:")
            lines += [f"    //   {p.describe(schedule, factory_names)}" for p in finding.preemptions]
        lines.append(f"    stresscoro::replay::turns turns({schedule.threads}, {{{owners}}}, {{{taken}}});")
        lines.append("    turns.run<A>({")
        for t in range(schedule.threads):
            lines.append(f"        [&] {{  // thread {t}")
            for i, o in enumerate(schedule.ops):
                if o.thread != t:
                    continue
                lines.append(f"            turns.begin({i}, {t});")
                lines += ["            " + c for c in per_op[i]]
                lines.append(f"            turns.end({i});")
            lines.append(f"            turns.begin({n + t}, {t});  // end of schedule for thread {t}")
            lines += end_turn(t, "            ")
            lines.append(f"            turns.end({n + t});")
            lines.append("        },")
        lines.append("    });")
    lines += ["    stresscoro::replay::end<A>();",
              "    return stresscoro::replay::broken_invariants() ? 1 : 0;", "}", ""]
    return "\n".join(lines)


def _clear(k: int, before: dict) -> list[str]:
    """Lines that empty slot k before something new is constructed in it."""
    st = before.get(k)
    if st is None:
        return []
    return [f"q{k}.reset();"] if st.probe else [f"s{k}.reset();"] if st.live else []


def _op_cpp(schedule: Schedule, o: Op, before: dict, counter: dict) -> list[str]:
    """C++ lines for one op, given the slot states before it (Schedule.simulate)."""
    n, a = o.name, o.args
    live = lambda k: k in before and before[k].live  # noqa: E731
    if n == "make":
        x, f, arg = a
        return _clear(x, before) + [f"s{x}.emplace_from([&] {{ return A::make({f}, {arg}); }});"]
    if n in ("copy", "move"):
        src, dst = a
        if not live(src) or src == dst:
            return []
        value = f"*s{src}" if n == "copy" else f"std::move(*s{src})"
        return _clear(dst, before) + [f"s{dst}.emplace({value});"]
    if n == "copy_assign":
        src, dst = a
        return [f"*s{dst} = *s{src};"] if live(src) and live(dst) else []
    if n == "move_assign":
        src, dst = a
        if not (live(src) and live(dst)):
            return []
        if src == dst:  # the driver runs it only where the rules allow it
            return [f"if constexpr (stresscoro::detail::rules_of<A>().self_move_assign) "
                    f"*s{dst} = std::move(*s{src});"]
        return [f"*s{dst} = std::move(*s{src});"]
    if n == "swap":
        x, y = a
        return [f"{{ using std::swap; swap(*s{x}, *s{y}); }}"] if live(x) and live(y) else []
    if n == "step":
        return ["A::step();"]
    if n in ("make_from", "call"):
        sig = schedule.signature(o)
        ins = o.inputs()
        if not all(live(k) for k in ins):
            return []
        ptrs = [f"&*s{k}" for k in ins] + ["nullptr"] * (2 - len(ins))
        inputs = f"stresscoro::inputs<A::object>({ptrs[0]}, {ptrs[1]}, {len(ins)})"
        consumed = [f"s{k}.reset();  // {sig.name} consumed it"
                    for k, mode in zip(ins, sig.inputs) if mode == "consume"]
        if n == "call":
            return [f"A::apply({a[0]}, {a[1]}, {inputs});  // {sig.name}"] + consumed
        dst, which, arg = a[:3]
        return (_clear(dst, before)
                + [f"s{dst}.emplace_from([&] {{ return A::combine({which}, {arg}, {inputs}); }});"
                   f"  // {sig.name}"] + consumed)
    if n == "probe":
        dst, src = a
        if not live(src) or dst == src:
            return []
        counter["probe"] += 1
        return _clear(dst, before) + [f"q{dst}.await_on(*s{src}, {counter['probe'] - 1});"]
    x = a[0]
    if n == "drop":
        return _clear(x, before)
    if n == "send":
        st = before.get(x)
        if st is None or not (st.live or st.probe):
            return []
        return [f"turns.send({a[1]});  // slot {x} now belongs to thread {a[1]}"]
    if not live(x):
        return []
    if n == "resume":
        return [f"A::resume(*s{x});"]
    if n == "touch":
        return [f"A::touch(*s{x});"]
    if n == "await":
        k = counter["await"]
        counter["await"] += 1
        return [f"stresscoro::init_probe(probes[{k}], {k});",
                f"stresscoro::await_from<!stresscoro::detail::rules_of<A>().await_lvalue>(*s{x}, probes[{k}]);"]
    raise NotImplementedError(f"no C++ rendering for op {n!r}")


def render_python(schedule: Schedule, target: Target, sanitizer: str, finding: Finding,
                  timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB) -> str:
    ops = ",\n".join(f"    {_op_python(o)}" for o in schedule.ops)
    if target.builtin:
        get_target = f"targets.get({target.name!r})"
    else:
        get_target = (f"targets.from_adapter({str(target.adapter)!r}, name={target.name!r}, "
                      f"include_dirs={tuple(target.include_dirs)!r}, defines={tuple(target.defines)!r}, "
                      f"cxxflags={tuple(target.cxxflags)!r})")
    test = re.sub(r"[^a-z0-9]+", "_", f"test_{target.name}_{sanitizer}_{finding.kind}".lower())
    return textwrap.dedent('''\
        """Replays a stresscoro finding: {kind} in {target} under {sanitizer}.

        {summary}
        Fails while the bug is there; passes once it is fixed. Run: python -m pytest {{this file}}
        """

        from stresscoro import targets
        from stresscoro.schedule import Preemption, Schedule, Signature, make, op
        from stresscoro.session import replay

        SCHEDULE = Schedule({target!r}, (
        {ops},
        ), slots={slots}, threads={threads}{signatures}{preemptions})


        def {test}():
            outcome, _ = replay(SCHEDULE, {get_target}, {sanitizer!r},
                                timeout_s={timeout_s!r}, memory_mb={memory_mb!r})
            assert outcome.ok, outcome.describe(SCHEDULE)
        ''').format(kind=finding.kind, target=target.name, sanitizer=sanitizer,
                    summary=finding.summary.replace('"""', "'''"), ops=ops, slots=schedule.slots,
                    threads=schedule.threads, test=test, get_target=get_target,
                    signatures=_signatures_python(schedule),
                    preemptions=_preemptions_python(schedule),
                    timeout_s=float(timeout_s), memory_mb=int(memory_mb))


def _preemptions_python(schedule: Schedule) -> str:
    if not schedule.preemptions:
        return ""
    items = ", ".join(f"Preemption({p.op}, {p.after}, {p.to})" for p in schedule.preemptions)
    return f",\n    preemptions=({items},)"


def _signatures_python(schedule: Schedule) -> str:
    out = ""
    for key in ("combinators", "custom_ops"):
        sigs = getattr(schedule, key)
        if sigs:
            items = ", ".join(f"Signature({g.name!r}, {g.inputs!r}, {g.arg_min}, {g.arg_max})"
                              for g in sigs)
            out += f",\n    {key}=({items},)"
    return out


def _op_python(o: Op) -> str:
    if o.name == "make":
        slot, factory, arg = o.args
        thread = f", thread={o.thread}" if o.thread else ""
        return f"make({slot}, factory={factory}, arg={arg}{thread})"
    args = ", ".join(str(v) for v in o.args)
    thread = f", thread={o.thread}" if o.thread else ""
    return f"op({o.name!r}, {args}{thread})"


def claim_stem(out_dir: Path, target: Target, sanitizer: str, finding: Finding,
               index: int = 1) -> str:
    """The stem for `index`, or for the next index up: the first whose schedule file
    this call creates.

    The exclusive create is the claim, so two runs writing into one folder at the same
    time never share a name, and an earlier run's reproducers are never overwritten."""
    n = index
    while True:
        candidate = stem_for(target, sanitizer, finding, n)
        try:
            with open(out_dir / f"{candidate}.json", "x"):
                return candidate
        except FileExistsError:
            n += 1


def write(schedule: Schedule, target: Target, options: BuildOptions, finding: Finding,
          factory_names: list[str], out_dir: Path, index: int = 1, *,
          timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB) -> Reproducer:
    """Write the schedule, the pytest file and the C++ program for a finding made under
    the build `options`; `index` numbers the findings of one kind in one campaign (a
    higher number is taken if another run already wrote that one). The pytest file
    replays under the same `timeout_s` and `memory_mb` as the campaign's worker."""
    sanitizer = options.sanitizer
    out_dir.mkdir(parents=True, exist_ok=True)
    mark_reproducer_dir(out_dir)
    stem = claim_stem(out_dir, target, sanitizer, finding, index)
    cpp = (out_dir / f"{stem}.cpp").resolve()
    py = (out_dir / f"test_{stem}.py").resolve()
    sched_file = (out_dir / f"{stem}.json").resolve()
    exe = out_dir.resolve() / stem
    repro_san = reproducer_sanitizer(sanitizer, finding)
    write_text_atomically(sched_file, schedule.dumps())
    write_text_atomically(py, render_python(schedule, target, sanitizer, finding, timeout_s, memory_mb))
    rep = Reproducer(cpp=cpp, python=py, schedule=sched_file)
    try:
        line = build_command(dataclasses.replace(options, sanitizer=repro_san), cpp, exe)
        write_text_atomically(cpp, render_cpp(schedule, target, repro_san, finding, factory_names, line))
    except NotImplementedError as e:
        write_text_atomically(cpp, f"// stresscoro could not write a C++ reproducer: {e}\n")
        rep.notes.append(str(e))
    return rep


def verify(rep: Reproducer, finding: Finding, *, timeout_s: float = DEFAULT_TIMEOUT_S,
           compile_timeout_s: float = COMPILE_TIMEOUT_S,
           memory_mb: int = DEFAULT_MEMORY_MB,
           progress: Callable[[str], None] | None = None) -> Reproducer:
    """Re-run both reproducers, the C++ program under the worker's `timeout_s` and
    `memory_mb`; verified only if each shows the same finding kind (a crash by the
    same signal counts)."""
    say = progress or (lambda line: None)
    say(f"verifying {rep.cpp.name}: compile, then run (timeout {timeout_s:g} s, "
        f"memory cap {memory_mb} MiB)")
    rep.cpp_kind = _run_cpp(rep, timeout_s, memory_mb, compile_timeout_s)
    say(f"verifying {rep.python.name}: pytest replays the schedule")
    rep.python_kind = _run_python(rep, finding, timeout_s)
    rep.verified = rep.cpp_kind == finding.kind and rep.python_kind == finding.kind
    if rep.cpp_kind != finding.kind:
        rep.notes.append(f"C++ reproducer showed {rep.cpp_kind or 'nothing'}, not {finding.kind}")
    if rep.python_kind != finding.kind:
        rep.notes.append(f"pytest reproducer showed {rep.python_kind or 'nothing'}, not {finding.kind}")
    return rep


def build_line_of(cpp: Path) -> str | None:
    first = cpp.read_text().splitlines()[0] if cpp.exists() else ""
    return first[len("// build: "):] if first.startswith("// build: ") else None


def _run_cpp(rep: Reproducer, timeout_s: float, memory_mb: int,
             compile_timeout_s: float = COMPILE_TIMEOUT_S) -> str | None:
    line = build_line_of(rep.cpp)
    if line is None:
        return None
    compile_line, _, run = line.rpartition(" && ")
    env = {k: v for k, v in os.environ.items() if not k.endswith("SAN_OPTIONS") and k != "LD_PRELOAD"}
    built = supervise.run_bounded(["bash", "-c", compile_line], timeout_s=compile_timeout_s, env=env)
    if built.status != "exited" or built.returncode != 0:
        rep.notes.append(f"the C++ reproducer did not compile: {built.stderr.strip()[-500:]}")
        return None
    ran = supervise.run_bounded(shlex.split(run), timeout_s=timeout_s, memory_mb=memory_mb,
                                env=env, cwd=str(rep.cpp.parent))
    if ran.status == "memory":
        return "out-of-memory"
    if ran.status == "hang":
        return "hang"
    rep.cpp_output = ran.stderr
    report = parse_sanitizer_report(ran.stderr)
    if report is not None:
        return report.kind
    invariant = re.search(r"^stresscoro invariant: ([a-z-]+)", ran.stderr, re.M)
    if invariant:
        return f"invariant:{invariant.group(1)}"
    if ran.signal_name:
        return f"crash:{ran.signal_name}"
    return None


def _run_python(rep: Reproducer, finding: Finding, timeout_s: float) -> str | None:
    ran = supervise.run_bounded(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         str(rep.python)], timeout_s=timeout_s + PYTEST_ALLOWANCE_S, cwd=str(rep.python.parent))
    if ran.status == "hang":
        return "hang"
    if "No module named pytest" in ran.stderr:
        rep.notes.append(f"pytest is not installed for {sys.executable}; pip install pytest")
        return None
    if ran.returncode != 1:
        return None
    m = re.search(r"^E\s+AssertionError: stresscoro finding: (\S+)", ran.stdout, re.M)
    return m.group(1) if m else None
