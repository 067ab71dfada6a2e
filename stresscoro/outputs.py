"""Where results go: output paths checked before any work, files written atomically.

Shared by the faces (cli.py, fuzz.py): a path that cannot be written is found before
the first campaign, never after the last one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


class OutputError(OSError):
    """An output path that cannot be written; the message names the option and the path."""


def check_dir(option: str, path: str) -> Path:
    """Create `path` if needed and prove that a file can be created in it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".stresscoro-probe-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{option} {path!r} is not a writable directory ({e.strerror or e}); "
                          f"pass a directory you can write to") from None
    return p


def check_file(option: str, path: str) -> None:
    """Prove that `path` can be written (and atomically replaced): its folder exists and
    takes new files, and it is not a directory. "-" (stdout) always passes."""
    if path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{option} {path!r} is a directory; pass a file path, or - for stdout")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{option} {path!r}: the folder {str(folder)!r} does not exist; "
                          "create it or pass another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{option} {path!r} cannot be written ({e.strerror or e}); "
                          "pass a path in a folder you can write to") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"{option} {path!r} exists and is read-only; pass another path")


def write_text_atomically(path: str | Path, text: str) -> None:
    """Temp file in the same folder, then rename: readers see the old or the new file."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(data: dict, dest: str) -> None:
    """JSON to `dest` (atomically), or to stdout for "-"."""
    text = json.dumps(data, indent=2) + "\n"
    if dest == "-":
        sys.stdout.write(text)
    else:
        write_text_atomically(dest, text)


# Reproducers include test_*.py files that fail until their bug is fixed: a directory of
# them carries this marker, and pytest sessions with stresscoro's plugin do not collect it.
REPRODUCER_DIR_MARKER = ".stresscoro-out"


def mark_reproducer_dir(path: Path) -> None:
    marker = Path(path) / REPRODUCER_DIR_MARKER
    if not marker.exists():
        write_text_atomically(marker, "stresscoro reproducers: pytest sessions with the "
                                      "stresscoro plugin do not collect this directory\n")
