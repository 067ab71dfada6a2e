"""Targets: adapter files and the metadata their `// stresscoro:` header lines carry."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from .build import native_dir
from .schedule import MAX_THREADS

BUG_CLASSES = (
    "copy-owning-task",
    "move-keeps-source",
    "leak-unfinished",
    "final-never-destroy",
    "copy-assign-self",
    "relaxed-refcount",
    "dangling-parameter",
    "nested-resume",
    "awaiter-overwritten",
    "eager-final-frees",
    "combinator-dangling-temporaries",
    "resume-inside-await-suspend",
    "move-assign-leaks-old",
    "check-then-act-release",
    "lost-wakeup",
    "when-all-counter",
)
KINDS = ("task", "generator", "shared_task", "chain", "other")
SANITIZERS = ("asan", "tsan", "ubsan", "none")
_META = re.compile(r"^//\s*stresscoro:\s*([a-z_]+)\s*=\s*(.*?)\s*$")
_FIELDS = ("name", "kind", "bug_class", "expected", "sanitizers", "twin", "summary", "cxxflags",
           "threads")


class UnknownTarget(LookupError):
    """No target of that name."""


class InvalidTarget(ValueError):
    """An adapter file whose metadata lines are malformed."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A coroutine type to stress: its adapter file plus what we expect of it."""

    name: str
    adapter: Path
    kind: str = "other"
    bug_class: str | None = None
    expected: str = "clean"  # "clean", "unverifiable", or a finding kind
    sanitizers: tuple[str, ...] = ("asan",)
    twin: str | None = None
    summary: str = ""
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    cxxflags: tuple[str, ...] = ()
    builtin: bool = False
    threads: int | None = None  # schedule threads when a campaign is not told (metadata)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "bug_class": self.bug_class,
            "expected": self.expected,
            "sanitizers": list(self.sanitizers),
            "twin": self.twin,
            "summary": self.summary,
            "threads": self.threads,
        }


def read_metadata(adapter: Path) -> dict[str, str]:
    """The `// stresscoro: key=value` lines at the top of an adapter file."""
    meta: dict[str, str] = {}
    with open(adapter, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            m = _META.match(line.strip())
            if m is None:
                if line.strip() and not line.lstrip().startswith("//"):
                    break  # metadata lives in the leading comment block
                continue
            key, value = m.groups()
            if key not in _FIELDS:
                raise InvalidTarget(
                    f"{adapter}:{lineno}: unknown metadata key {key!r}; expected one of "
                    f"{', '.join(_FIELDS)}")
            meta[key] = value
    return meta


def from_adapter(adapter: str | Path, *, name: str | None = None, builtin: bool = False,
                 include_dirs: tuple[str, ...] = (), defines: tuple[str, ...] = (),
                 cxxflags: tuple[str, ...] = ()) -> Target:
    adapter = Path(adapter).resolve()
    if not adapter.is_file():
        raise UnknownTarget(f"adapter file {str(adapter)!r} does not exist")
    meta = read_metadata(adapter)
    kind = meta.get("kind", "other")
    if kind not in KINDS:
        raise InvalidTarget(f"{adapter}: kind={kind!r}; expected one of {', '.join(KINDS)}")
    bug_class = meta.get("bug_class") or None
    if bug_class is not None and bug_class not in BUG_CLASSES:
        raise InvalidTarget(f"{adapter}: bug_class={bug_class!r}; expected one of "
                            f"{', '.join(BUG_CLASSES)}")
    sanitizers = tuple(s.strip() for s in meta.get("sanitizers", "asan").split(",") if s.strip())
    unknown = [s for s in sanitizers if s not in SANITIZERS]
    if unknown or not sanitizers:
        raise InvalidTarget(
            f"{adapter}: metadata sanitizers={meta.get('sanitizers', '')!r} names "
            f"{', '.join(map(repr, unknown)) or 'no sanitizer'}; expected a comma-separated "
            f"list of {', '.join(SANITIZERS)}")
    threads = None
    if meta.get("threads"):
        value = meta["threads"]
        if not value.isdigit() or not 1 <= int(value) <= MAX_THREADS:
            raise InvalidTarget(f"{adapter}: metadata threads={value!r}; expected a whole "
                                f"number from 1 to {MAX_THREADS}")
        threads = int(value)
    return Target(
        name=name or meta.get("name") or adapter.stem,
        adapter=adapter,
        kind=kind,
        bug_class=bug_class,
        expected=meta.get("expected", "clean"),
        sanitizers=sanitizers,
        twin=meta.get("twin") or None,
        summary=meta.get("summary", ""),
        include_dirs=tuple(os.path.abspath(d) for d in include_dirs),  # reproducers run elsewhere
        defines=defines,
        cxxflags=tuple(meta.get("cxxflags", "").split()) + tuple(cxxflags),
        builtin=builtin,
        threads=threads,
    )


def builtin_targets() -> list[Target]:
    """Every built-in target, correct twins first, then seeded bugs, by name."""
    found = [from_adapter(p, builtin=True)
             for p in sorted((native_dir() / "targets" / "adapters").glob("*.cpp"))]
    return sorted(found, key=lambda t: (t.bug_class is not None, t.name))


def builtin(name: str, source: str = "the target") -> Target:
    """A built-in target by name, never a file: names that come from data (a schedule
    file) must not make stresscoro compile an arbitrary path."""
    for t in builtin_targets():
        if t.name == name:
            return t
    names = ", ".join(t.name for t in builtin_targets())
    raise UnknownTarget(f"no built-in target named {name!r} ({source}). Built-in targets: "
                        f"{names}. To run your own type, pass its adapter with --adapter FILE.")


def get(name: str) -> Target:
    """A built-in target by name, or an adapter file by path."""
    for t in builtin_targets():
        if t.name == name:
            return t
    if name.endswith((".cpp", ".cc", ".cxx", ".hpp")) or "/" in name:
        return from_adapter(name)
    names = ", ".join(t.name for t in builtin_targets())
    raise UnknownTarget(f"no target named {name!r}. Built-in targets: {names}. "
                        "To test your own type, pass the path of its adapter .cpp file.")
