"""Entry point of a sanitized worker process (run by stresscoro.worker, not by users).

The process started by the parent is a *zygote*: it loads the target module under the
preloaded sanitizer runtime once, says hello with its capabilities, then waits for
"fork" requests on a Unix socket. Each request carries a fresh pair of pipe ends; the
zygote forks a *runner* that serves schedules over them until the parent closes them
or the runner dies, and reports the runner's pid and, later, how it ended. A crash thus
costs a fork (milliseconds), not a new interpreter and a new sanitizer runtime.

The zygote never runs a schedule, so it stays single-threaded: forking it is safe under
ThreadSanitizer too. Keeps imports minimal: every import costs start-up time.
"""

import ctypes
import importlib.machinery
import importlib.util
import json
import mmap
import os
import signal
import socket
import struct
import sys


def _die_with_parent(parent: int) -> None:
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the parent's cleanup and the closed pipes still end us
    if os.getppid() != parent:
        os._exit(3)  # the parent died before we could ask to die with it


# Frames on a pipe: a little-endian 32-bit length, then the payload. The job pool
# (pool.py) speaks the same framing and imports these two from here: this module cannot
# import the package (it runs under -S -E), the package can import it.


def write_frame(fd: int, payload: bytes) -> None:
    data = struct.pack("<I", len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]


def read_frame(fd: int) -> bytes | None:
    """One frame, or None at end of file."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack("<I", head)
    return _read_exact(fd, size)


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _serve(lib, ffi, shared, words: int, request_fd: int, reply_fd: int) -> None:
    """The runner: run encoded schedules until the request pipe closes."""
    while (payload := read_frame(request_fd)) is not None:
        ops = ffi.from_buffer("int[]", bytearray(payload))
        rc = lib.stresscoro_run(ops, len(payload) // 4, shared, words)
        write_frame(reply_fd, struct.pack("<i", rc))
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: sanitizers find nothing useful there


def main() -> None:
    module_path, module_name, shared_path, cffi_dir, control_fd, parent = sys.argv[1:7]
    sys.path.insert(0, cffi_dir)  # site is off (-S); the module needs only _cffi_backend
    _die_with_parent(int(parent))
    control = socket.socket(fileno=int(control_fd))
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
    control.sendall(json.dumps(hello).encode() + b"\n")
    zygote = os.getpid()
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(control, 16, 2)
        except OSError:
            break
        if not msg or len(fds) != 2:
            break
        request_fd, reply_fd = fds
        pid = os.fork()
        if pid == 0:
            control.close()
            _die_with_parent(zygote)
            _serve(lib, ffi, shared, words, request_fd, reply_fd)
        os.close(request_fd)
        os.close(reply_fd)
        control.sendall(f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        control.sendall(f"exit {status}\n".encode())
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
