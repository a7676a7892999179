"""The speed probe: a short calibrated matmul benchmark giving each device a relative speed.

``speed = measured GFLOP/s / REFERENCE_GFLOPS`` for CPUs and GPUs alike, so
speeds compare across kinds. CPUs run a fixed float32 numpy matmul on one
thread (one trial runs per CPU slot); GPUs run a float32 torch matmul (TF32
off) in a child process pinned with ``CUDA_VISIBLE_DEVICES=<uuid>``, so this
process never initializes CUDA. Results are cached in
``$XDG_CACHE_HOME/hwaware/speed.json`` (default ``~/.cache``), keyed by host,
UUID (or name) and :data:`PROBE_VERSION`.

Thread-safety: concurrent writers never corrupt the cache (atomic replace); at
worst one writer's new entry is lost and measured again next time.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwaware_plugins._atomic import write_atomic
from hwaware_plugins.hardware._device import Device, this_host
from hwaware_plugins.hardware.fake_nvml import FAKE_NVML_ENV

_log = logging.getLogger(__name__)

PROBE_VERSION = 1
"""Bumped whenever the workload changes; older cache entries are then ignored."""

REFERENCE_GFLOPS = 100.0
"""Speed 1.0: float32 matmul GFLOP/s of one current server core (AVX2/AVX-512 FMA, one thread)."""

_CPU_SIZE = 256
_CPU_REPEATS = 32
_CPU_MAX_RUNS = 7
_CPU_MIN_RUNS = 3
_CPU_BUDGET_S = 0.4
_GPU_TIMEOUT_S = 180.0

_GPU_SCRIPT = """
import json, time, torch
if not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no CUDA device"}))
    raise SystemExit(0)
torch.backends.cuda.matmul.allow_tf32 = False
n, reps = 4096, 10
a = torch.randn(n, n, device="cuda")
b = torch.randn(n, n, device="cuda")
times = []
for run in range(6):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    if run:
        times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"gflops": 2 * n**3 * reps / times[len(times) // 2] / 1e9}))
"""


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/hwaware/speed.json``, or ``~/.cache/hwaware/speed.json``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "hwaware" / "speed.json"


def cache_key(device: Device) -> str:
    """``"<host>|<uuid or kind:name>|v<PROBE_VERSION>"``: what the cache is keyed by."""
    ident = device.uuid or f"{device.kind}:{device.name}"
    return f"{device.host}|{ident}|v{PROBE_VERSION}"


def _read_cache(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        _log.debug("ignoring unreadable speed cache %s: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): float(v["speed"])
        for k, v in data.items()
        if isinstance(v, dict) and isinstance(v.get("speed"), int | float)
    }


def _write_cache(path: Path, new: dict[str, float]) -> None:
    """Merge ``new`` into the file and replace it atomically; failures only log."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = _read_cache(path) | new
        payload = {k: {"speed": v} for k, v in sorted(merged.items())}
        write_atomic(path, json.dumps(payload, indent=1).encode("utf-8"), durable=False)
    except OSError as exc:
        _log.warning("could not write the speed cache %s: %s", path, exc)


def _single_thread() -> AbstractContextManager[Any]:
    """A context manager limiting BLAS to one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        _log.debug("threadpoolctl missing: the CPU probe may use several BLAS threads")
        return nullcontext()
    limits: AbstractContextManager[Any] = threadpool_limits(limits=1)
    return limits


def measure_cpu_gflops() -> float:
    """Single-thread float32 matmul GFLOP/s: median of 3-7 timed runs, about 0.1-0.5 s."""
    import numpy as np  # local: importing the hardware package stays cheap

    rng = np.random.default_rng(0)
    a = rng.standard_normal((_CPU_SIZE, _CPU_SIZE), dtype=np.float32)
    b = rng.standard_normal((_CPU_SIZE, _CPU_SIZE), dtype=np.float32)
    flop = 2.0 * _CPU_SIZE**3 * _CPU_REPEATS
    times: list[float] = []
    with _single_thread():
        np.matmul(a, b)  # warm-up: page in BLAS and its buffers
        started = time.perf_counter()
        while len(times) < _CPU_MAX_RUNS:
            t0 = time.perf_counter()
            for _ in range(_CPU_REPEATS):
                np.matmul(a, b)
            times.append(time.perf_counter() - t0)
            if len(times) >= _CPU_MIN_RUNS and time.perf_counter() - started > _CPU_BUDGET_S:
                break
    return flop / statistics.median(times) / 1e9


def measure_gpu_gflops(uuid: str) -> float | None:
    """Float32 matmul GFLOP/s on the GPU or MIG instance ``uuid``, in a child process.

    Returns ``None`` (with a log line) when torch or CUDA is not available there.
    Cost: one Python start with torch import plus ~1 s of matmul.
    """
    if importlib.util.find_spec("torch") is None:
        _log.info("torch is not installed: cannot measure %s; keeping its speed", uuid)
        return None
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=uuid)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _GPU_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=_GPU_TIMEOUT_S,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {"error": done.stderr.strip()[-300:]}
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        result = {"error": repr(exc)}
    if "gflops" not in result:
        _log.info("cannot measure %s (%s); keeping its speed", uuid, result.get("error"))
        return None
    return float(result["gflops"])


def _measure(
    device: Device, cache: dict[str, float], refresh: bool, measured: set[str]
) -> float | None:
    """Relative speed from the cache or a fresh measurement; None when not measurable.

    ``measured`` holds the keys measured during this call, so ``refresh`` measures
    each key once.
    """
    key = cache_key(device)
    if key in cache and (not refresh or key in measured):
        return cache[key]
    if device.host != this_host():
        _log.info("%s is on host %s, not this one: keeping its speed", device.id, device.host)
        return None
    if device.kind == "cpu":
        gflops: float | None = measure_cpu_gflops()
    elif os.environ.get(FAKE_NVML_ENV):
        _log.info("%s is simulated (%s is set): keeping its speed", device.id, FAKE_NVML_ENV)
        gflops = None
    elif device.uuid:
        gflops = measure_gpu_gflops(device.uuid)
    else:
        _log.info("%s has no UUID to pin it by: keeping its speed", device.id)
        gflops = None
    if gflops is None:
        return None
    measured.add(key)
    cache[key] = gflops / REFERENCE_GFLOPS
    return cache[key]


def measure_speed(
    device: Device, *, cache_path: str | os.PathLike[str] | None = None, refresh: bool = False
) -> float:
    """The relative speed of ``device``: cached, else measured and cached.

    Falls back to ``device.speed`` (not cached) when the device cannot be
    measured from here (another host, no UUID, no torch/CUDA for a GPU).

    :param cache_path: the JSON cache file (default :func:`default_cache_path`).
    :param refresh: measure again even when a cached value exists.
    Cost: a cache read; when measuring, ~0.1-0.5 s for a CPU, a few seconds for a GPU.
    """
    path = Path(cache_path) if cache_path is not None else default_cache_path()
    cache = _read_cache(path)
    measured: set[str] = set()
    speed = _measure(device, cache, refresh, measured)
    if measured:
        _write_cache(path, {key: cache[key] for key in measured})
    return device.speed if speed is None else speed


def calibrate(
    devices: Sequence[Device],
    *,
    cache_path: str | os.PathLike[str] | None = None,
    refresh: bool = False,
) -> list[Device]:
    """Copies of ``devices`` with measured speeds (``speed_source="measured"``).

    Devices with ``speed_source == "declared"`` (from a declared-device file)
    and devices that cannot be measured from here are returned unchanged.
    Cost: one cache read and write, plus :func:`measure_speed` per uncached device.
    """
    path = Path(cache_path) if cache_path is not None else default_cache_path()
    cache = _read_cache(path)
    measured: set[str] = set()
    result: list[Device] = []
    for device in devices:
        if device.speed_source == "declared":
            result.append(device)
            continue
        speed = _measure(device, cache, refresh, measured)
        result.append(
            device if speed is None else replace(device, speed=speed, speed_source="measured")
        )
    if measured:
        _write_cache(path, {key: cache[key] for key in measured})
    return result
