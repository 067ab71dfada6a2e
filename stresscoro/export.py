"""`stresscoro export-fuzzer`: a self-contained fuzzer project for one adapter.

The directory holds the adapter and the headers it uses (src/lib), stresscoro's
native headers (src/include), a libFuzzer entry point (native/include/stresscoro/
fuzzer_entry.hpp after the adapter), a build.sh that compiles it with
`$CXX $CXXFLAGS $LIB_FUZZING_ENGINE` as OSS-Fuzz and ClusterFuzzLite call it, and a
ClusterFuzzLite layout (.clusterfuzzlite/project.yaml, Dockerfile, build.sh).
stresscoro-fuzzer.json records the generator settings the fuzzer was built with, which
`stresscoro replay --fuzzer-input` and `fuzz --fuzzer-input` read back."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

from .build import BuildOptions, native_include_dir, source_files
from .targets import Target

SETTINGS_FILE = "stresscoro-fuzzer.json"
SETTINGS_FORMAT = "stresscoro-fuzzer"
DEFAULT_SETTINGS = {"max_ops": 12, "slots": 3, "threads": 1}


def fuzzer_name(target: Target) -> str:
    return "".join(c if c.isalnum() else "_" for c in target.name) + "_fuzzer"


def export(target: Target, out: Path, *, compiler: str | None = None, max_ops: int = 12,
           slots: int = 3, threads: int = 1) -> Path:
    """Write the fuzzer project for `target` into `out` (created; existing files of the
    same names replaced). Returns the path of build.sh."""
    options = BuildOptions(sanitizer="none", compiler=compiler, include_dirs=target.include_dirs,
                           defines=target.defines, cxxflags=target.cxxflags)
    include_root = Path(os.path.realpath(native_include_dir()))
    deps = [Path(d) for d in source_files(target.adapter, options)]
    own = [d for d in deps if include_root not in d.parents]
    includes = [Path(os.path.realpath(d)) for d in target.include_dirs]
    used_includes = [d for d in includes if any(d in f.parents for f in own)]
    common = Path(os.path.commonpath([str(f.parent) for f in own] + [str(d) for d in used_includes]))

    out.mkdir(parents=True, exist_ok=True)
    src = out / "src"
    if (src / "include").exists():
        shutil.rmtree(src / "include")
    shutil.copytree(include_root / "stresscoro", src / "include" / "stresscoro",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f in own:
        dest = src / "lib" / f.relative_to(common)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    adapter_rel = Path("src/lib") / Path(os.path.realpath(target.adapter)).relative_to(common)

    name = fuzzer_name(target)
    entry = out / f"{name}.cpp"
    entry.write_text(
        f"// The libFuzzer entry point for {target.name}, written by stresscoro export-fuzzer.\n"
        f'#include "{adapter_rel.as_posix()}"\n'
        "#include <stresscoro/fuzzer_entry.hpp>\n")

    flags = ["-std=c++20", "-I\"$HERE/src/include\""]
    flags += [f"-I\"$HERE/src/lib/{d.relative_to(common).as_posix()}\"".replace("/.\"", "\"")
              for d in used_includes]
    flags += [shlex.quote(f"-D{d}") for d in target.defines]
    flags += [shlex.quote(f) for f in target.cxxflags]
    flags += [f"-DSTRESSCORO_FUZZ_MAX_OPS={max_ops}", f"-DSTRESSCORO_FUZZ_SLOTS={slots}",
              f"-DSTRESSCORO_FUZZ_THREADS={threads}"]
    build_sh = out / "build.sh"
    build_sh.write_text(_BUILD_SH.format(target=target.name, name=name, flags=" ".join(flags)))
    _executable(build_sh)

    cfl = out / ".clusterfuzzlite"
    cfl.mkdir(exist_ok=True)
    (cfl / "project.yaml").write_text(_PROJECT_YAML)
    (cfl / "Dockerfile").write_text(_DOCKERFILE.format(project=name))
    (cfl / "build.sh").write_text(_CFL_BUILD_SH.format(project=name))
    _executable(cfl / "build.sh")

    settings = {"format": SETTINGS_FORMAT, "version": 1, "target": target.name,
                "fuzzer": name, "max_ops": max_ops, "slots": slots, "threads": threads}
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    return build_sh


def read_settings(directory: Path) -> dict | None:
    """The generator settings an exported fuzzer was built with, if `directory` has them."""
    try:
        data = json.loads((directory / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != SETTINGS_FORMAT:
        return None
    return {k: int(data[k]) for k in DEFAULT_SETTINGS if isinstance(data.get(k), int)}


class InvalidFuzzerInput(ValueError):
    """A --fuzzer-input that cannot be used; the message says why and what to pass."""


def fuzzer_input_file(path: str) -> str:
    if not os.path.isfile(path):
        raise InvalidFuzzerInput(f"--fuzzer-input {path!r} is not a file; pass a libFuzzer "
                                 "input (a crash-* file or a corpus entry)")
    return os.path.abspath(path)


def decode_settings(args) -> dict:
    """The generator settings a fuzzer input is decoded with: --max-ops/--slots/--threads,
    else the stresscoro-fuzzer.json of the exported fuzzer next to the file (or one
    folder up), else the export defaults."""
    here = Path(args.fuzzer_input).resolve().parent
    found = read_settings(here) or read_settings(here.parent) or {}
    settings = {**DEFAULT_SETTINGS, **found}
    for key in DEFAULT_SETTINGS:
        if getattr(args, key, None):
            settings[key] = getattr(args, key)
    return settings


def fuzzing_compiler() -> str | None:
    """clang++ (or clang++-16) with its libFuzzer runtime installed, or None."""
    for name in ("clang++", "clang++-16"):
        path = shutil.which(name)
        if path is None:
            continue
        lib = subprocess.run([path, "-print-file-name=libclang_rt.fuzzer-x86_64.a"],
                             capture_output=True, text=True).stdout.strip()
        if os.path.isabs(lib) and os.path.exists(lib):
            return path
    return None


MISSING_CLANG = ("clang++ with its libFuzzer runtime is not installed, so this machine cannot "
                 "build the fuzzer (Debian: apt-get install clang-16 libclang-rt-16-dev)")


def _executable(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


_BUILD_SH = """#!/bin/bash -eu
# Builds the stresscoro fuzzer for {target} the way OSS-Fuzz and ClusterFuzzLite call a
# project's build: $CXX $CXXFLAGS ... $LIB_FUZZING_ENGINE, output in $OUT.
# Standalone defaults: clang++ (or clang++-16) with libFuzzer and AddressSanitizer.
#   ./build.sh && ./out/{name} -runs=100000
# Every input decodes to a legal schedule; a crash file turns back into a schedule with
#   stresscoro replay --fuzzer-input crash-... --target {target}   (or --adapter FILE)
# The generator settings (max ops, slots, threads) are in stresscoro-fuzzer.json.
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
if [ -z "${{CXX:-}}" ]; then
  CXX="$(command -v clang++ || command -v clang++-16 || true)"
  if [ -z "$CXX" ]; then
    echo "build.sh: no clang++ found; install clang and its fuzzer runtime (Debian: apt-get install clang-16 libclang-rt-16-dev) or set CXX" >&2
    exit 2
  fi
fi
: "${{CXXFLAGS:=-g -O1 -fno-omit-frame-pointer -fsanitize=address,fuzzer-no-link}}"
: "${{LIB_FUZZING_ENGINE:=-fsanitize=fuzzer}}"
: "${{OUT:=$HERE/out}}"
mkdir -p "$OUT"
$CXX $CXXFLAGS {flags} "$HERE/{name}.cpp" -o "$OUT/{name}" $LIB_FUZZING_ENGINE -lpthread
echo "built $OUT/{name}"
"""

# ClusterFuzzLite: no thread sanitizer on these services (stresscoro's own TSan
# campaigns check the cross-thread rules); address and undefined only.
_PROJECT_YAML = """language: c++
sanitizers:
  - address
  - undefined
"""

_DOCKERFILE = """FROM gcr.io/oss-fuzz-base/base-builder
COPY . $SRC/{project}
WORKDIR $SRC/{project}
COPY .clusterfuzzlite/build.sh $SRC/
"""

_CFL_BUILD_SH = """#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz entry: they set $CXX, $CXXFLAGS, $LIB_FUZZING_ENGINE, $OUT, $SRC
# and run this as $SRC/build.sh; run in place (.clusterfuzzlite/build.sh) it builds too.
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
if [ -f "$HERE/../{project}.cpp" ]; then
  exec "$HERE/../build.sh"
fi
exec "$SRC/{project}/build.sh"
"""
