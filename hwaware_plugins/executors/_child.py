"""The worker process: ``python -m hwaware_plugins.executors._child RESULT [CPUS]``.

The executor starts it in a new session (its own process group) with the
lease's pinning already in its environment, so CUDA can only ever see the
leased device. Protocol:

1. argv: the path to write the result record to, and optionally a comma list
   of CPU cores, applied first thing (before the task is unpickled, which may
   import torch and size its thread pools).
2. stdin: an 8-byte big-endian length, then the task envelope
   (see :func:`hwaware_plugins.executors._payload.task_payload`). The executor
   keeps stdin open while the worker lives; end-of-file means the executor
   died, and the worker then kills its whole process group (no orphans even
   when the parent is SIGKILLed). The task itself sees ``/dev/null`` as stdin.
3. The result record (a pickled dict, written atomically) holds the value or
   the exception's type, message and traceback, ``is_oom``, the runtime and the
   peak memory. The worker then kills what the task left running in its
   group (SIGTERM, SIGKILL after ``$HWAWARE_KILL_GRACE_S``; never itself or
   the executor), so no child outlives a finished task even when the executor
   dies before it reaps the worker, and leaves with ``os._exit(0)``, so stray
   non-daemon threads or atexit hooks of the task cannot keep it alive.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import signal
import sys
import threading
import time
import traceback
from typing import Any

from hwaware_plugins._atomic import write_atomic
from hwaware_plugins.executors._oom import is_oom_error
from hwaware_plugins.executors._payload import HEADER, dumps, loads
from hwaware_plugins.executors._strays import grace_from_env, kill_strays


def _read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError(f"task payload ended {remaining} bytes early")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _watch_parent(fd: int) -> None:
    while os.read(fd, 4096):
        pass
    # The executor is gone: take the whole group down with us.
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _detach_stdin() -> int:
    watch_fd = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return watch_fd


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS and in KiB elsewhere.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _peak_cuda_mb() -> float | None:
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        total = sum(
            torch.cuda.max_memory_allocated(index) for index in range(torch.cuda.device_count())
        )
    except Exception:  # a broken CUDA state must not hide the task's result
        return None
    return float(total) / (1 << 20)


def _failure(exc: BaseException, started: float, prefix: str = "") -> dict[str, Any]:
    message = " ".join(str(exc).split())
    return {
        "ok": False,
        "exc_type": type(exc).__qualname__,
        "exc_message": prefix + message,
        "traceback": "".join(traceback.format_exception(exc)),
        "is_oom": is_oom_error(exc),
        "runtime_s": time.perf_counter() - started,
    }


def run_task(task_blob: bytes) -> dict[str, Any]:
    """Run the serialised ``(fn, args, kwargs)`` and build the result record."""
    started = time.perf_counter()
    try:
        fn, args, kwargs = loads(task_blob)
    except BaseException as exc:
        record = _failure(exc, started, "cannot load the task in the worker: ")
    else:
        started = time.perf_counter()
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:
            record = _failure(exc, started)
        else:
            runtime = time.perf_counter() - started
            try:
                record = {"ok": True, "value": dumps(value), "runtime_s": runtime}
            except Exception as exc:
                record = _failure(exc, started, "the return value cannot be pickled: ")
                record["runtime_s"] = runtime
    record["peak_rss_mb"] = _peak_rss_mb()
    record["peak_cuda_mb"] = _peak_cuda_mb()
    return record


def _write_record(path: str, record: dict[str, Any]) -> None:
    write_atomic(path, pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))


def main(argv: list[str]) -> int:
    """Pin, read the task from stdin, run it, write the record, kill the task's leftovers;
    return the exit code."""
    if len(argv) not in (1, 2):
        print("usage: python -m hwaware_plugins.executors._child RESULT [CPUS]", file=sys.stderr)
        return 2
    if len(argv) == 2 and argv[1] and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(core) for core in argv[1].split(",")})
    (size,) = HEADER.unpack(_read_exact(0, HEADER.size))
    envelope = pickle.loads(_read_exact(0, size))
    watch_fd = _detach_stdin()
    threading.Thread(target=_watch_parent, args=(watch_fd,), daemon=True).start()
    sys.path[:0] = [entry for entry in envelope["sys_path"] if entry not in sys.path]
    _write_record(argv[0], run_task(envelope["task"]))
    # Only now, with the result on disk: a kill racing this cannot lose it.
    kill_strays(grace_s=grace_from_env())
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
