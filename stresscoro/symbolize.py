"""Turn module+offset frames of an unsymbolized sanitizer report into function names."""

from __future__ import annotations

import functools
import shutil
import subprocess


class Symbolizer:
    """addr2line behind a cache: each (module, offset) is looked up once per process.

    Workers run with symbolization off, which makes every crash several times cheaper;
    telling findings apart only needs the few frames the oracle looks at."""

    def __init__(self, tool: str | None = None):
        self.tool = tool or shutil.which("addr2line")
        self.paths: dict[str, str] = {}  # file name -> path, for reports that omit directories

    def know(self, module: str) -> None:
        """Let frames that name `module` by its file name alone be looked up."""
        self.paths[module.rsplit("/", 1)[-1]] = str(module)

    @functools.lru_cache(maxsize=4096)
    def frames(self, module: str, offset: int) -> tuple[str, ...]:
        """The inline chain at `offset` in `module`, innermost first, as "func file:line"."""
        module = self.paths.get(module, module)
        if self.tool is None or "/" not in module:
            return ()
        try:
            proc = subprocess.run([self.tool, "-f", "-C", "-i", "-e", module, hex(offset)],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ()
        lines = proc.stdout.splitlines()
        out = []
        for func, where in zip(lines[::2], lines[1::2]):
            if func == "??":
                continue
            out.append(f"{func} {where.split(' (discriminator')[0]}")
        return tuple(out)
