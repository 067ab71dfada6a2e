"""Entry point of a job-pool process (started by stresscoro.pool, not by users).

Reads calls from stdin and answers each on the pipe named on the command line, until
stdin ends. SIGTERM (or SIGINT) while a call runs raises KeyboardInterrupt in it (and
at every later checkpoint, supervise.interrupt), so it unwinds through its own cleanups
(workers closed, shared memory removed) and answers "interrupted"; between calls it only
ends the loop; a SIGALRM a few seconds later ends it if the unwinding gets stuck. When
the parent has died (the parent-death signal is a SIGTERM) nobody waits for an answer:
the process kills what it started, removes what it created and exits at once.
"""

import os
import pickle
import signal
import sys

from stresscoro import pool, supervise

UNWIND_S = 8


def main() -> None:
    parent, answers = int(sys.argv[1]), int(sys.argv[2])
    state = {"in_call": False, "stopping": False}

    def on_stop(signum, frame):
        if os.getppid() != parent:
            supervise.reap_now()
            os._exit(128 + signum)
        if state["stopping"]:
            return
        state["stopping"] = True
        signal.alarm(UNWIND_S)  # default action: the process ends
        if state["in_call"]:
            supervise.interrupt()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    supervise.die_with_parent(signal.SIGTERM, parent)
    try:
        while not state["stopping"]:
            frame = pool.read_frame(0)
            if frame is None:
                break
            index, fn, args = pickle.loads(frame)
            try:
                state["in_call"] = True
                if state["stopping"]:
                    supervise.interrupt()
                answer = (index, "ok", fn(*args))
            except KeyboardInterrupt:
                answer = (index, "interrupted", None)
            except Exception as e:  # noqa: BLE001 - reported to the parent as the call's error
                answer = (index, "error", f"{type(e).__name__}: {e}")
            finally:
                state["in_call"] = False
            pool.write_frame(answers, pickle.dumps(answer))
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    sys.stderr.flush()


if __name__ == "__main__":
    main()
