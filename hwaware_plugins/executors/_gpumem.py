"""Accelerator memory per process, read through NVML (or the simulated NVML).

The executor uses it to see whether a persistent worker gives its GPU memory
back between tasks, and a worker to find a process it spawned that holds the
slot's GPU memory (a leak). Everything returns empty when NVML is unavailable.
"""

from __future__ import annotations

import logging
from typing import Any

_log = logging.getLogger("hwaware_plugins.executors")
_MIB = 1024 * 1024


def _handle(lib: Any, visible: str) -> Any:
    """The NVML handle of the device a ``CUDA_VISIBLE_DEVICES`` value names (UUID or index)."""
    first = visible.split(",")[0].strip()
    if first.isdigit():
        return lib.nvmlDeviceGetHandleByIndex(int(first))
    return lib.nvmlDeviceGetHandleByUUID(first)


def process_memory_mb(visible: str) -> dict[int, float]:
    """MiB of device memory each process uses on the device ``visible`` names.

    :param visible: a ``CUDA_VISIBLE_DEVICES`` value: a ``GPU-``/``MIG-`` UUID
        or an index (the first entry of a list); empty gives ``{}``.
    Returns ``{}`` when NVML (or ``HWAWARE_FAKE_NVML``) is unavailable or does not
    know the device. Cost: one NVML session (tens of ms on real drivers).
    """
    if not visible.strip():
        return {}
    from hwaware_plugins.hardware._nvml import _init, _load_nvml, _shutdown

    lib = _load_nvml(None)
    if lib is None or not _init(lib):
        return {}
    try:
        handle = _handle(lib, visible)
        used: dict[int, float] = {}
        for process in lib.nvmlDeviceGetComputeRunningProcesses(handle):
            memory = getattr(process, "usedGpuMemory", None) or 0
            used[int(process.pid)] = used.get(int(process.pid), 0.0) + float(memory) / _MIB
        return used
    except (lib.NVMLError, ValueError) as exc:
        _log.debug("cannot read per-process memory of %s: %s", visible, exc)
        return {}
    finally:
        _shutdown(lib)
