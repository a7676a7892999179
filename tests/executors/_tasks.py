"""Callables the executor tests run in worker processes (cheap to import there)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time


def pinning() -> dict[str, str | None]:
    """The pinning variables the worker sees."""
    keys = ("CUDA_VISIBLE_DEVICES", "HWAWARE_DEVICE_ID", "HWAWARE_LEASE_ID", "HWAWARE_TASK_LABEL")
    return {key: os.environ.get(key) for key in keys}


def add(a: int, b: int, *, scale: int = 1) -> int:
    """Return ``(a + b) * scale``."""
    return (a + b) * scale


def raise_value_error(message: str) -> None:
    """Raise ``ValueError(message)`` from a nested call, for the traceback."""

    def inner() -> None:
        raise ValueError(message)

    inner()


def exit_hard(code: int) -> None:
    """Leave without a result, as a worker dying mid-trial does."""
    os._exit(code)


def kill_self() -> None:
    """SIGKILL the worker itself."""
    os.kill(os.getpid(), signal.SIGKILL)


def segfault() -> None:
    """Read address 0: a real segmentation fault."""
    ctypes.string_at(0)


def oom_on_small(threshold_mb: int) -> str:
    """Raise a CUDA OOM message on devices below ``threshold_mb`` (from HWAWARE_DEVICE_ID)."""
    memory = {"gpu-small": 4000, "gpu-mid": 8000, "gpu-big": 16000}
    device = os.environ["HWAWARE_DEVICE_ID"]
    if memory.get(device, 0) < threshold_mb:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return device


def spawn_and_sleep(pid_file: str, seconds: float) -> None:
    """Start a sleeping grandchild, write its pid to ``pid_file``, then sleep."""
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    tmp = pid_file + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(str(child.pid))
    os.replace(tmp, pid_file)
    time.sleep(seconds)


def spawn_and_return(pid_file: str) -> str:
    """Start a sleeping grandchild, write its pid, return at once (leaving it behind)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(pid_file, "w") as handle:
        handle.write(str(child.pid))
    return "done"


def sleep_and_stamp(seconds: float) -> tuple[float, float]:
    """Sleep; return the wall-clock start and end (to measure overlap)."""
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def ignore_sigterm_and_sleep(seconds: float) -> None:
    """Ignore SIGTERM (forcing SIGKILL) and sleep."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)


def unpicklable_result() -> object:
    """Return something pickle cannot send back."""
    import threading

    return threading.Lock()
