"""The host probe: this machine's CPU as one device with one slot per usable core."""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

import psutil

from hwaware_plugins.hardware._device import Device

_log = logging.getLogger(__name__)
_MIB = 1024 * 1024


def cpu_model_name(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> str:
    """The CPU model: ``model name`` from ``cpuinfo``, else ``platform.processor()``, else "cpu".

    Cost: one small file read.
    """
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor().strip() or "cpu"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on macOS and Windows
        return max(1, os.cpu_count() or 1)


def _load_percent(cores: int) -> float | None:
    """One-minute load average per usable core, as a percent capped at 100."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    return min(100.0, 100.0 * load / cores)


def probe_host_devices() -> list[Device]:
    """This host's CPU: one device ``"cpu"`` with ``cores = slots =`` usable cores.

    Memory is host memory in MiB (total and available, from psutil);
    utilization is the one-minute load average per core (percent, capped at 100).
    Cost: a /proc read and two cheap system calls. Thread-safe.
    """
    cores = usable_cores()
    memory = psutil.virtual_memory()
    return [
        Device(
            id="cpu",
            kind="cpu",
            name=cpu_model_name(),
            device_class="cpu",
            memory_total_mb=int(memory.total) // _MIB,
            memory_free_mb=int(memory.available) // _MIB,
            cores=cores,
            slots=cores,
            utilization=_load_percent(cores),
        )
    ]
