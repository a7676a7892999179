"""The persistent worker: ``python -m hwaware_plugins.executors._child RESULT_FD [CPUS]``.

The executor starts one worker per slot pinning, in a process group of its own
(in the coordinator's session), with the slot's pinning already in its environment, so CUDA
can only ever see the leased device; the worker then runs task after task.
Protocol:

1. argv: the file descriptor to write result records to, and optionally a
   comma list of CPU cores, applied first thing (before any task is unpickled,
   which may import torch and size its thread pools).
2. stdin: messages, each an 8-byte big-endian length and a pickled dict:
   ``{"kind": "task", "env": {...}, "payload": bytes}`` (the per-task
   variables, e.g. ``HWAWARE_LEASE_ID``, and the envelope of
   :func:`~hwaware_plugins.executors._payload.task_payload`) or
   ``{"kind": "quit"}``: the worker then exits as a plain script does (exit
   hooks run, so joblib/loky pools close cleanly; at most 2 s). End-of-file
   means the executor died: a busy worker kills its whole process group at
   once; an idle one exits the same way and then kills its group. The task
   itself sees ``/dev/null`` as stdin.
3. RESULT_FD: per task, ``{"kind": "started"}`` once the task is loaded (its
   modules imported) and the callable starts (the time limit counts from
   there), then one record, framed the same way (see :func:`run_task`),
   plus what the worker found after the task: ``held_cuda_mb`` (memory torch
   still holds once its cache is emptied), ``strays_killed`` and ``retire`` (a
   reason to replace this worker, or ``None``).

After each task the worker kills what truly leaked (see
:func:`~hwaware_plugins.executors._strays.leaked_processes`) and keeps the
processes the task left for reuse (joblib/loky pools and their resource
trackers); they die with the worker.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import queue
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import psutil

from hwaware_plugins.executors._oom import is_oom_error
from hwaware_plugins.executors._payload import HEADER, dumps, loads
from hwaware_plugins.executors._strays import (
    grace_from_env,
    kill_processes,
    leaked_processes,
    max_kept_from_env,
)

STARTED = "started"
"""The ``kind`` of the frame a worker sends when the callable starts (after its imports)."""
_EOF = "eof"
# Seconds a leaving worker gives its exit hooks before it ends itself.
_EXIT_HOOKS_S = 2.0


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int) -> Any:
    """One framed, pickled message from ``fd``; ``None`` at end-of-file (or a cut-off one)."""
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    body = _read_exact(fd, size)
    return None if body is None else pickle.loads(body)


def frame(message: object) -> bytes:
    """``message`` pickled, after its length as :data:`HEADER` packs it."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def write_message(fd: int, message: object) -> None:
    """Write ``message`` pickled and framed (length first) to ``fd``, all of it."""
    view = memoryview(frame(message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _State:
    """Whether a task runs and whether the executor is gone, changed under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy = False
        self.eof = False


def _read_commands(fd: int, inbox: queue.SimpleQueue[Any], state: _State) -> None:
    while True:
        message = read_message(fd)
        if message is None:
            break
        inbox.put(message)
    # The executor is gone. Mid-task: take the whole group down with us, now.
    with state.lock:
        state.eof = True
        busy = state.busy
    if busy:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    inbox.put({"kind": _EOF})


def _detach_stdin() -> int:
    watch_fd = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return watch_fd


def _reset_peaks() -> None:
    # Writing 5 to clear_refs resets the peak resident set size (VmHWM), Linux >= 4.0.
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    torch: Any = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.cuda.is_initialized():
                for index in range(torch.cuda.device_count()):
                    torch.cuda.reset_peak_memory_stats(index)


def _peak_rss_mb() -> float:
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS and in KiB elsewhere.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _cuda(measure: str) -> float | None:
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        count = range(torch.cuda.device_count())
        if measure == "peak":
            total = sum(torch.cuda.max_memory_allocated(index) for index in count)
        else:  # what stays held once the caching allocator gave its cache back
            torch.cuda.empty_cache()
            total = sum(torch.cuda.memory_reserved(index) for index in count)
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
    """Run the serialised ``(fn, args, kwargs)`` and build the result record.

    The record holds ``ok`` and the pickled ``value``, or ``exc_type``,
    ``exc_message``, ``traceback`` and ``is_oom``; always ``runtime_s``,
    ``peak_rss_mb`` and ``peak_cuda_mb`` (this task's peaks: both are reset first).
    """
    loaded = load_task(task_blob)
    return loaded if isinstance(loaded, dict) else run_call(*loaded)


def load_task(task_blob: bytes) -> tuple[Any, tuple[Any, ...], dict[str, Any]] | dict[str, Any]:
    """Unpickle ``(fn, args, kwargs)`` (importing the task's modules), or a failure record."""
    started = time.perf_counter()
    try:
        fn, args, kwargs = loads(task_blob)
    except BaseException as exc:
        record = _failure(exc, started, "cannot load the task in the worker: ")
        record["peak_rss_mb"] = _peak_rss_mb()
        record["peak_cuda_mb"] = _cuda("peak")
        return record
    return fn, args, kwargs


def run_call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call ``fn(*args, **kwargs)`` and build its result record (see :func:`run_task`)."""
    _reset_peaks()
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
    del fn, args, kwargs
    record["peak_rss_mb"] = _peak_rss_mb()
    record["peak_cuda_mb"] = _cuda("peak")
    return record


def _children_usage() -> tuple[float, ...]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime, usage.ru_stime, usage.ru_minflt, usage.ru_majflt)


def _has_children() -> bool:
    """True when this process has a child now (zombies included); True when unknown."""
    try:
        for thread in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{thread}/children") as handle:
                if handle.read().strip():
                    return True
    except OSError:
        return True
    return False


def _after_task(record: dict[str, Any], children_before: tuple[float, ...]) -> None:
    """Kill what leaked, measure what stays held, decide whether this worker retires.

    A task that started no process at all (no child now, and no child reaped
    during it: the children's resource usage did not move) is not scanned for.
    """
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    leaked: list[psutil.Process] = []
    kept: list[psutil.Process] = []
    if _has_children() or _children_usage() != children_before:
        leaked, kept = leaked_processes(gpu_visible=gpu)
    record["strays_killed"] = kill_processes(leaked, grace_s=min(grace_from_env(), 1.0))
    record["held_cuda_mb"] = _cuda("held")
    record["retire"] = None
    limit = max_kept_from_env()
    if len(kept) > limit:
        record["retire"] = (f"the task left {len(kept)} processes running (more than {limit}); "
                            "replacing the worker ends them")
    elif record.get("is_oom"):
        record["retire"] = "the task ran out of accelerator memory"


def _run_message(message: dict[str, Any], result_fd: int) -> dict[str, Any]:
    os.environ.update(message.get("env", {}))
    envelope = pickle.loads(message["payload"])
    sys.path[:0] = [entry for entry in envelope["sys_path"] if entry not in sys.path]
    children_before = _children_usage()
    loaded = load_task(envelope["task"])
    if isinstance(loaded, dict):
        record = loaded
    else:
        # The time limit counts from here: the task's imports were warm-up.
        write_message(result_fd, {"kind": STARTED})
        record = run_call(*loaded)
        del loaded
    for stream in (sys.stdout, sys.stderr):  # what the task printed shows now, not at exit
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    _after_task(record, children_before)
    return record


def _leave_by(seconds: float, state: _State) -> None:
    """A watchdog: if the normal exit hangs (a task's non-daemon thread), leave anyway."""

    def watch() -> None:
        time.sleep(seconds)
        _end_group(state)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _end_group(state: _State) -> None:
    """Registered first, so it runs last at exit: with the executor gone, nobody else
    will end what is left of our group (the children our tasks kept), so we do."""
    if state.eof:
        os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Pin, then run task after task from stdin until told to quit; return the exit code."""
    if len(argv) not in (1, 2):
        print("usage: python -m hwaware_plugins.executors._child RESULT_FD [CPUS]",
              file=sys.stderr)
        return 2
    if len(argv) == 2 and argv[1] and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(core) for core in argv[1].split(",")})
    return serve(result_fd=int(argv[0]), command_fd=_detach_stdin())


def serve(*, result_fd: int, command_fd: int,
          after_exit_guard: Callable[[], None] | None = None) -> int:
    """Run task after task read from ``command_fd`` until told to quit (or its EOF).

    Shared by the spawned worker (:func:`main`) and the forked one
    (:mod:`~hwaware_plugins.executors._fork`); fd 0 must already be ``/dev/null``.
    ``after_exit_guard`` runs once the group-ending exit hook is registered (so
    exit hooks it registers run before that one). Returns the exit code.
    """
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    state = _State()
    # A group that is not the terminal's foreground one is stopped by SIGTTOU when it
    # writes there under `stty tostop`; a worker's warnings must never stop it.
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    atexit.register(_end_group, state)
    if after_exit_guard is not None:
        after_exit_guard()
    threading.Thread(target=_read_commands, args=(command_fd, inbox, state),
                     daemon=True).start()
    while True:
        message = inbox.get()
        kind = message.get("kind")
        with state.lock:
            if state.eof:  # a task sent just before the executor died is not run
                kind = _EOF
            state.busy = kind == "task"
        if kind == "task":
            try:
                record = _run_message(message, result_fd)
            except OSError:  # the executor is gone; the reader thread sees EOF next
                continue
            with state.lock:
                state.busy = False
            # OSError: the executor is gone; the reader thread sees EOF next.
            with contextlib.suppress(OSError):
                write_message(result_fd, record)
            continue
        # Leave as a plain script does, so joblib/loky and multiprocessing shut
        # their pools and resource trackers down cleanly, but within bounds.
        _leave_by(_EXIT_HOOKS_S, state)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
