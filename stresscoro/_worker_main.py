"""Entry point of a sanitized worker process (run by stresscoro.worker, not by users).

Loads one target module, says hello with its capabilities, then runs encoded schedules
read from the request pipe until that pipe closes. Keeps imports minimal: this runs
under a preloaded sanitizer runtime, where every import costs start-up time.
"""

import ctypes
import importlib.machinery
import importlib.util
import json
import mmap
import os
import signal
import struct
import sys


def _die_with_parent() -> None:
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the parent's cleanup and the closed request pipe still end us


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, payload: bytes) -> None:
    os.write(fd, struct.pack("<I", len(payload)) + payload)


def main() -> None:
    module_path, module_name, shared_path, request_fd, reply_fd, parent, cffi_dir = sys.argv[1:8]
    sys.path.insert(0, cffi_dir)  # site is off (-S); the module needs only _cffi_backend
    request_fd, reply_fd = int(request_fd), int(reply_fd)
    _die_with_parent()
    if os.getppid() != int(parent):
        os._exit(3)  # the parent died before we could ask to die with it
    loader = importlib.machinery.ExtensionFileLoader(module_name, module_path)
    spec = importlib.util.spec_from_file_location(module_name, module_path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    ffi, lib = module.ffi, module.lib

    with open(shared_path, "r+b") as f:
        area = mmap.mmap(f.fileno(), 0)
    words = len(area) // 8
    shared = ffi.from_buffer("long long[]", area)
    hello = {
        "pid": os.getpid(),
        "capabilities": lib.stresscoro_capabilities(),
        "describe": json.loads(ffi.string(lib.stresscoro_describe()).decode()),
    }
    _send(reply_fd, json.dumps(hello).encode())
    while True:
        try:
            (size,) = struct.unpack("<I", _read_exact(request_fd, 4))
            payload = bytearray(_read_exact(request_fd, size))
        except EOFError:
            break
        ops = ffi.from_buffer("int[]", payload)
        rc = lib.stresscoro_run(ops, size // 4, shared, words)
        _send(reply_fd, struct.pack("<i", rc))
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: sanitizers find nothing useful there


if __name__ == "__main__":
    main()
