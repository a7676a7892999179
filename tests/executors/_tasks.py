"""Callables the executor tests run in worker processes (cheap to import there)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


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


IMPORTED_AT = time.monotonic_ns()
"""When this module was imported in the process running it."""


def where_imported() -> tuple[int, int]:
    """This process's pid and when it imported this module (same value: imported once)."""
    return os.getpid(), IMPORTED_AT


def affinity_and_threads() -> tuple[int, list[int], str | None]:
    """The pid, CPU affinity and OMP thread count this task runs with."""
    return os.getpid(), sorted(os.sched_getaffinity(0)), os.environ.get("OMP_NUM_THREADS")


def orphan_a_grandchild(pid_file: str) -> int:
    """Leave a sleeping process whose parent (a shell) is gone; return this pid."""
    subprocess.run(["sh", "-c", f"sleep 60 & echo $! > {pid_file}"], check=True)
    return os.getpid()


def loky_pool_pids() -> tuple[int, list[int]]:
    """Use a joblib/loky pool of two workers; return this pid and the pool's worker pids."""
    from joblib import Parallel, delayed

    pids = Parallel(n_jobs=2, backend="loky")(delayed(pid_after)(0.2) for _ in range(6))
    return os.getpid(), sorted(set(pids))


def pid_after(seconds: float) -> int:
    """Sleep, then return this process's pid (keeps both workers of a pool busy)."""
    time.sleep(seconds)
    return os.getpid()


def hold_gpu_memory(nvml_file: str, uuid: str, used_mb: int) -> int:
    """Make the simulated NVML show this process holding ``used_mb`` on GPU ``uuid``."""
    text = (
        f'[[gpu]]\nname = "Test GPU"\nmemory_total_mb = 16000\nuuid = "{uuid}"\n'
        f"[[gpu.process]]\npid = {os.getpid()}\nused_memory_mb = {used_mb}\n"
    )
    with open(nvml_file + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(nvml_file + ".tmp", nvml_file)
    return os.getpid()


def thread_oom_on_small(threshold_mb: int) -> str:
    """As :func:`oom_on_small`, reading the device from ``current_device()`` (threads)."""
    from hwaware_plugins.executors import current_device

    memory = {"gpu-small": 4000, "gpu-mid": 8000, "gpu-big": 16000}
    running = current_device()
    assert running is not None and running.device_id is not None
    if memory.get(running.device_id, 0) < threshold_mb:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return running.device_id


def running_on() -> object:
    """What ``current_device()`` says inside the task."""
    from hwaware_plugins.executors import current_device

    return current_device()


def child_holding_gpu_memory(nvml_file: str, uuid: str, pid_file: str) -> int:
    """Leave a child that the simulated NVML shows holding memory on GPU ``uuid``."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    text = (
        f'[[gpu]]\nname = "Test GPU"\nmemory_total_mb = 16000\nuuid = "{uuid}"\n'
        f"[[gpu.process]]\npid = {child.pid}\nused_memory_mb = 500\n"
    )
    with open(nvml_file + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(nvml_file + ".tmp", nvml_file)
    with open(pid_file, "w") as handle:
        handle.write(str(child.pid))
    return os.getpid()


def slow_exit_hook(marker: str, seconds: float) -> int:
    """Register an exit hook that takes ``seconds`` and then writes ``marker``; return the pid."""
    import atexit

    def leave() -> None:
        time.sleep(seconds)
        Path(marker).write_text("done", encoding="ascii")

    atexit.register(leave)
    return os.getpid()
