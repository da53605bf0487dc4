"""pyfaults: a Python test plugin that misbehaves on request.

{"mode": "echo", ...}          answers its input
{"mode": "alloc", "mb": N}     touches N MiB, 1 MiB at a time, and holds it
{"mode": "alloc", "mb": N, "once": true} asks for N MiB in one allocation
{"mode": "crash", "message": s} writes s to stderr and exits with status 3
{"mode": "hang"}               sleeps for ever
{"mode": "progress", "steps": N, "sleep_ms": M} reports N steps
{"mode": "invalid"}            raises InvalidInput
{"mode": "fail"}               raises an exception
{"mode": "pid"}                answers {"pid": its pid}
{"mode": "trace"}              answers {"traceparent": the task's traceparent}
"""

import os
import sys
import time

import wpm_plugin

held = []


def run(task):
    mode = task.get("mode")
    if mode == "echo":
        return task
    if mode == "pid":
        return {"pid": os.getpid()}
    if mode == "trace":
        return {"traceparent": wpm_plugin.traceparent()}
    if mode == "alloc" and task.get("once"):
        # Under RLIMIT_DATA malloc fails at once: MemoryError, which the
        # SDK turns into an exit the host reads as out of memory.
        held.append(bytearray(int(task["mb"]) << 20))
        return {"allocated_mb": task["mb"], "pid": os.getpid()}
    if mode == "alloc":
        chunks = []
        for _ in range(int(task.get("mb", 0))):
            chunks.append(bytearray(b"x" * (1 << 20)))
        held.append(chunks)
        return {"allocated_mb": len(chunks), "pid": os.getpid()}
    if mode == "crash":
        sys.stderr.write(task.get("message", "pyfaults crashed") + "\n")
        sys.stderr.flush()
        os._exit(3)
    if mode == "hang":
        while True:
            time.sleep(3600)
    if mode == "progress":
        steps = int(task.get("steps", 3))
        for i in range(steps):
            wpm_plugin.progress((i + 1) / steps, "step %d" % (i + 1))
            time.sleep(task.get("sleep_ms", 150) / 1000)
        return {"steps": steps}
    if mode == "invalid":
        raise wpm_plugin.InvalidInput("pyfaults: invalid on request")
    if mode == "fail":
        raise RuntimeError("pyfaults: failed on request")
    raise wpm_plugin.InvalidInput("unknown mode %r" % (mode,))


if __name__ == "__main__":
    wpm_plugin.serve(run, concurrency=int(os.environ.get("PYFAULTS_CONCURRENCY", "2")))
