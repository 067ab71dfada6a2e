"""Compile a target adapter into a sanitized cffi module, cached by what went into it."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.machinery
import importlib.resources
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

SANITIZERS = ("asan", "tsan", "ubsan", "none")

_SANITIZER_FLAGS = {
    "asan": ["-fsanitize=address", "-fno-omit-frame-pointer"],
    "tsan": ["-fsanitize=thread"],
    "ubsan": ["-fsanitize=undefined", "-fno-sanitize-recover=all"],
    "none": [],
}
# The runtime each sanitizer needs preloaded into the interpreter (by compiler family).
_RUNTIMES = {
    "gcc": {"asan": "libasan.so", "tsan": "libtsan.so", "ubsan": "libubsan.so"},
    "clang": {
        "asan": "libclang_rt.asan-x86_64.so",
        "tsan": "libclang_rt.tsan-x86_64.so",
        "ubsan": "libclang_rt.ubsan_standalone-x86_64.so",
    },
}
# -O1 by default: GCC 12's TSan missed a real refcount race at -O2 that -O1 catches.
DEFAULT_OPT = "-O1"
_BASE_FLAGS = ["-std=c++20", "-fPIC", "-g"]
_OWN_WARNINGS = ["-Wall", "-Wextra"]
_BUILD_FORMAT = 2  # bump when the build recipe changes (2: sync-point hooks first)
# First in every translation unit stresscoro compiles around an adapter: it turns the
# target's atomics and mutex calls into sync points the scheduler can preempt at.
PREEMPT_INCLUDE = "#include <stresscoro/preempt.hpp>\n"


class BuildError(RuntimeError):
    """A target could not be built; the message carries the compiler's own output."""


class CompilerNotFound(BuildError):
    """The requested C++ compiler is not installed."""


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """Everything besides the adapter that changes the compiled module."""

    sanitizer: str = "asan"
    compiler: str | None = None  # None: $STRESSCORO_CXX, else g++
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    cxxflags: tuple[str, ...] = ()
    opt: str = DEFAULT_OPT

    def __post_init__(self) -> None:
        if self.sanitizer not in SANITIZERS:
            raise ValueError(
                f"Expected a sanitizer in {', '.join(SANITIZERS)} but got sanitizer={self.sanitizer!r}"
            )


@dataclasses.dataclass(frozen=True)
class Build:
    """A compiled target module and what a worker needs to load it."""

    adapter: Path
    module_path: Path
    module_name: str
    sanitizer: str
    compiler: str
    compiler_family: str
    runtime: Path | None  # the sanitizer runtime to preload, if any
    key: str
    compile_flags: tuple[str, ...]
    include_dirs: tuple[str, ...]

    @property
    def warnings_path(self) -> Path:
        return self.module_path.with_name(self.module_name + ".warnings.txt")

    @property
    def warnings(self) -> str:
        """What the compiler warned about in the target's own code (not the cffi glue)."""
        try:
            return self.warnings_path.read_text()
        except FileNotFoundError:
            return ""

    @property
    def tsan_blind_spots(self) -> tuple[str, ...]:
        """Constructs the compiler says ThreadSanitizer does not support (-Wtsan),
        such as atomic_thread_fence: races reported around them may be false."""
        found = re.findall(r"[‘'`]([A-Za-z_:]+)[’'`] is not supported with [‘'`]-fsanitize=thread",
                           self.warnings)
        return tuple(sorted(set(found)))


def native_dir() -> Path:
    """The native sources, from a checkout or an installed package alike."""
    return Path(str(importlib.resources.files("stresscoro._native")))


def native_include_dir() -> Path:
    return native_dir() / "include"


def cache_dir() -> Path:
    """$STRESSCORO_CACHE_DIR, else $XDG_CACHE_HOME/stresscoro, else ~/.cache/stresscoro."""
    explicit = os.environ.get("STRESSCORO_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stresscoro"


def resolve_compiler(requested: str | None) -> tuple[str, str]:
    """Return (absolute compiler path, family) or raise CompilerNotFound with the remedy."""
    name = requested or os.environ.get("STRESSCORO_CXX") or "g++"
    candidates = [name]
    if name == "clang++":
        candidates += [f"clang++-{v}" for v in range(20, 13, -1)]
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            family = "clang" if "clang" in os.path.basename(candidate) else "gcc"
            return path, family
    hint = (
        "install it (for clang: apt-get update && apt-get install clang-16)"
        if "clang" in name
        else "install a C++20 compiler (apt-get install g++), or point STRESSCORO_CXX at one"
    )
    raise CompilerNotFound(
        f"C++ compiler {name!r} was not found on PATH; {hint}. "
        "stresscoro compiles every target with it and cannot run without one."
    )


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(
            f"{what} failed (exit {proc.returncode}). The compiler said:\n"
            f"{proc.stderr.strip() or proc.stdout.strip()}\n"
            f"command: {shlex.join(cmd)}"
        )
    return proc


def _compiler_identity(compiler: str) -> str:
    return _run([compiler, "--version"], f"{compiler} --version").stdout.splitlines()[0]


def runtime_path(compiler: str, family: str, sanitizer: str) -> Path | None:
    """The shared sanitizer runtime to LD_PRELOAD, or None for an uninstrumented build."""
    if sanitizer == "none":
        return None
    lib = _RUNTIMES[family][sanitizer]
    found = _run([compiler, f"-print-file-name={lib}"], "locating the sanitizer runtime").stdout.strip()
    if not os.path.isabs(found) or not os.path.exists(found):
        raise BuildError(
            f"the {sanitizer} runtime {lib} for {compiler} is not installed "
            f"({compiler} -print-file-name={lib} printed {found!r}); install the compiler's "
            f"sanitizer runtime package (for g++ 12: libasan8, libtsan2, libubsan1)."
        )
    return Path(os.path.realpath(found))


def _dependencies(compiler: str, flags: list[str], main: Path) -> list[str]:
    """Every header the module's own translation unit pulls in, per the compiler."""
    proc = _run([compiler, *flags, "-MM", str(main)], f"compiling {main.name}")
    text = proc.stdout.replace("\\\n", " ")
    return sorted(set(text.split(":", 1)[1].split()))


def _hash_files(h: "hashlib._Hash", paths: list[str]) -> None:
    for p in paths:
        h.update(p.encode() + b"\0")
        h.update(Path(p).read_bytes())


def check_abi(compiler: str, family: str, identity: str) -> None:
    """Run the probe ABI self-test once per compiler; raise BuildError if it fails."""
    stamp_dir = cache_dir() / "abi"
    stamp_dir.mkdir(parents=True, exist_ok=True)
    stamp = stamp_dir / (hashlib.sha256(identity.encode()).hexdigest()[:16] + ".ok")
    if stamp.exists():
        return
    with tempfile.TemporaryDirectory(prefix="stresscoro-abi-") as tmp:
        exe = Path(tmp) / "abi_selftest"
        src = native_dir() / "selftest" / "abi_selftest.cpp"
        _run(
            [compiler, *_BASE_FLAGS, f"-I{native_include_dir()}", str(src), "-o", str(exe)],
            "building the probe ABI self-test",
        )
        proc = subprocess.run([str(exe)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(
            f"{identity} does not lay coroutine frames out the way stresscoro's probes "
            f"assume ({proc.stdout.strip() or 'exit ' + str(proc.returncode)}). Use g++ or clang++, "
            "or run without probes (targets that are not awaitable do not use them)."
        )
    stamp.write_text(identity + "\n")


def _include_dirs(options: BuildOptions) -> list[str]:
    return [str(native_include_dir()), *(os.path.abspath(d) for d in options.include_dirs)]


def compile_flags(options: BuildOptions) -> list[str]:
    """The flags a target's code is compiled with: in the module, and in the standalone
    C++ reproducers written for it."""
    return [
        *_BASE_FLAGS,
        options.opt,
        *_SANITIZER_FLAGS[options.sanitizer],
        *(f"-I{d}" for d in _include_dirs(options)),
        *(f"-D{d}" for d in options.defines),
        *options.cxxflags,
    ]


def build_target(adapter: str | os.PathLike, options: BuildOptions = BuildOptions(), name: str | None = None) -> Build:
    """Compile `adapter` into a cffi module under options.sanitizer; reuse a cached build
    when nothing that goes into it changed. Safe when several processes build at once."""
    adapter = Path(adapter).resolve()
    if not adapter.is_file():
        raise BuildError(f"adapter file {str(adapter)!r} does not exist")
    compiler, family = resolve_compiler(options.compiler)
    identity = _compiler_identity(compiler)
    check_abi(compiler, family, identity)

    include = _include_dirs(options)
    flags = compile_flags(options)
    root = cache_dir() / "modules"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stresscoro-dep-", dir=root) as tmp:
        main = Path(tmp) / "target_main.cpp"
        main.write_text(_main_source(adapter))
        deps = _dependencies(compiler, flags, main)

    h = hashlib.sha256()
    h.update(repr((_BUILD_FORMAT, identity, flags, sys.version, _cffi_version())).encode())
    _hash_files(h, [d for d in deps if not d.endswith("target_main.cpp")])
    _hash_files(h, [str(native_include_dir() / "stresscoro" / "shim.h")])
    key = h.hexdigest()[:20]
    stem = "".join(c if c.isalnum() else "_" for c in (name or adapter.stem))
    module_name = f"_stresscoro_{stem}_{options.sanitizer}_{key}"
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    module_path = root / (module_name + suffix)
    build = Build(
        adapter=adapter,
        module_path=module_path,
        module_name=module_name,
        sanitizer=options.sanitizer,
        compiler=compiler,
        compiler_family=family,
        runtime=runtime_path(compiler, family, options.sanitizer),
        key=key,
        compile_flags=tuple(flags),
        include_dirs=tuple(include),
    )
    if module_path.exists():
        return build
    with open(root / f"{module_name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not module_path.exists():  # another process may have finished it meanwhile
            _compile(build, flags, family, root)
    return build


def _main_source(adapter: Path) -> str:
    return f'{PREEMPT_INCLUDE}#include "{adapter}"\n#include <stresscoro/shim.inc>\n'


def _cffi_version() -> str:
    import cffi

    return cffi.__version__


def _compile(build: Build, flags: list[str], family: str, root: Path) -> None:
    import cffi

    with tempfile.TemporaryDirectory(prefix="stresscoro-build-", dir=root) as tmp:
        tmpdir = Path(tmp)
        main = tmpdir / "target_main.cpp"
        main.write_text(_main_source(build.adapter))
        shim_h = native_include_dir() / "stresscoro" / "shim.h"
        ffi = cffi.FFI()
        ffi.cdef(shim_h.read_text())
        ffi.set_source(build.module_name, 'extern "C" {\n#include <stresscoro/shim.h>\n}\n')
        glue = tmpdir / "glue.cpp"
        with contextlib.redirect_stdout(io.StringIO()):  # cffi announces every file it writes
            ffi.emit_c_code(str(glue))

        py_include = sysconfig.get_paths()["include"]
        own = tmpdir / "target_main.o"
        proc = _run([build.compiler, *flags, *_OWN_WARNINGS, "-c", str(main), "-o", str(own)],
                    f"compiling target {build.adapter.name}")
        build.warnings_path.write_text(proc.stderr)
        glue_o = tmpdir / "glue.o"
        # Generated glue: no warnings of ours, and it needs the Python headers.
        _run([build.compiler, *flags, "-w", f"-I{py_include}", "-c", str(glue), "-o", str(glue_o)],
             "compiling the cffi glue")
        out = tmpdir / build.module_path.name
        link = [build.compiler, "-shared", *_SANITIZER_FLAGS[build.sanitizer]]
        if family == "clang" and build.sanitizer != "none":
            link.append("-shared-libsan")
        _run([*link, str(own), str(glue_o), "-o", str(out), "-lpthread"], "linking the target module")
        os.replace(out, build.module_path)  # atomic: readers see all of it or nothing


def build_program(adapter: str | os.PathLike, options: BuildOptions, header: str,
                  name: str | None = None, link_flags: tuple[str, ...] = ()) -> Path:
    """Compile `adapter` followed by `#include <header>` (a header that defines main(),
    such as stresscoro/explore.hpp) into an executable under options.sanitizer; cached
    like build_target, keyed by every header it pulls in and the flags."""
    adapter = Path(adapter).resolve()
    if not adapter.is_file():
        raise BuildError(f"adapter file {str(adapter)!r} does not exist")
    compiler, family = resolve_compiler(options.compiler)
    identity = _compiler_identity(compiler)
    flags = compile_flags(options)
    root = cache_dir() / "programs"
    root.mkdir(parents=True, exist_ok=True)
    source = f'{PREEMPT_INCLUDE}#include "{adapter}"\n#include <{header}>\n'
    with tempfile.TemporaryDirectory(prefix="stresscoro-dep-", dir=root) as tmp:
        main = Path(tmp) / "program_main.cpp"
        main.write_text(source)
        deps = _dependencies(compiler, flags, main)
    h = hashlib.sha256()
    h.update(repr((_BUILD_FORMAT, identity, flags, link_flags, header)).encode())
    _hash_files(h, [d for d in deps if not d.endswith("program_main.cpp")])
    stem = "".join(c if c.isalnum() else "_" for c in (name or adapter.stem))
    exe = root / f"{stem}_{Path(header).stem}_{options.sanitizer}_{h.hexdigest()[:20]}"
    if exe.exists():
        return exe
    with open(root / f"{exe.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            with tempfile.TemporaryDirectory(prefix="stresscoro-build-", dir=root) as tmp:
                main = Path(tmp) / "program_main.cpp"
                main.write_text(source)
                out = Path(tmp) / exe.name
                _run([compiler, *flags, "-w", str(main), "-o", str(out), *link_flags, "-lpthread"],
                     f"compiling {Path(header).stem} for {adapter.name}")
                os.replace(out, exe)
    return exe


def source_files(adapter: str | os.PathLike, options: BuildOptions) -> list[str]:
    """The adapter and every header it pulls in besides the system's, per the compiler."""
    adapter = Path(adapter).resolve()
    if not adapter.is_file():
        raise BuildError(f"adapter file {str(adapter)!r} does not exist")
    compiler, _ = resolve_compiler(options.compiler)
    with tempfile.TemporaryDirectory(prefix="stresscoro-dep-") as tmp:
        main = Path(tmp) / "program_main.cpp"
        main.write_text(f'#include "{adapter}"\n')
        return [os.path.realpath(d) for d in _dependencies(compiler, compile_flags(options), main)
                if not d.endswith("program_main.cpp")]


_AWAIT_CHECK = """
#include "{adapter}"
#include <stresscoro/probe.hpp>
// What the probe op would do: co_await the object from a plain coroutine handle.
void stresscoro_await_check(stresscoro_target::object& value, stresscoro::probe_frame& probe) {{
    auto&& aw = stresscoro::detail::awaiter_of<{rvalue}>(value);
    static_cast<void>(aw.await_ready());
    static_cast<void>(aw.await_suspend(probe.handle()));
}}
"""


def await_check_error(adapter: Path, options: BuildOptions, rvalue: bool = False) -> str:
    """Why a probe cannot `co_await` the adapter's object: the compiler's first error
    line for that one expression (empty if it compiles after all)."""
    compiler, _ = resolve_compiler(options.compiler)
    with tempfile.TemporaryDirectory(prefix="stresscoro-await-") as tmp:
        src = Path(tmp) / "await_check.cpp"
        src.write_text(_AWAIT_CHECK.format(adapter=adapter, rvalue="true" if rvalue else "false"))
        flags = [f for f in compile_flags(options) if not f.startswith("-fsanitize")]
        proc = subprocess.run([compiler, *flags, "-fsyntax-only", str(src)], capture_output=True,
                              text=True)
    for line in proc.stderr.splitlines():
        if " error: " in line or line.startswith("error:"):
            return line.split("error:", 1)[1].strip()
    return ""
