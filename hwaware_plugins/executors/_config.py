"""Validating executor settings and building the device pool (at first use)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from hwaware_plugins.errors import ConfigError


def check_positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is ``None`` or a number > 0 (>= 0)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero) or value != value:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


def check_int(name: str, value: Any, low: int, *, or_none: bool = False) -> None:
    """Raise a one-line :class:`ConfigError` unless ``value`` is an int >= ``low`` (or
    ``None`` when ``or_none``, which the message then names)."""
    if value is None and or_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}{' or None' if or_none else ''}, "
                          f"got {value!r}")


def check_device_filters(**filters: object) -> None:
    """Raise a one-line :class:`ConfigError` for a filter neither callable nor None."""
    for name, given in filters.items():
        if given is not None and not callable(given):
            raise ConfigError(f"{name} must be a callable taking a Device, or None")


def resolve_pool(pool_or_devices: Any) -> Any:
    """The pool to lease from: a pool as given, else a ``DevicePool`` over the devices.

    ``None`` discovers this host's devices through the plugins' probes.
    """
    if pool_or_devices is not None and hasattr(pool_or_devices, "acquire"):
        return pool_or_devices
    from hwaware_plugins.hardware import Device, discover_devices
    from hwaware_plugins.hardware._pool import DevicePool

    if pool_or_devices is None:
        devices = discover_devices()
    elif isinstance(pool_or_devices, Sequence) and all(
        isinstance(d, Device) for d in pool_or_devices
    ):
        devices = list(pool_or_devices)
    else:
        raise ConfigError(
            f"pool_or_devices must be a DevicePool, a list of Device or None, got "
            f"{type(pool_or_devices).__name__}"
        )
    if not devices:
        raise ConfigError("LocalExecutor has no devices; declare some or pass a DevicePool")
    return DevicePool(devices)


def check_pinnable(pool: Any) -> None:
    """Refuse a pool with an accelerator that a worker process cannot be pinned to.

    A worker sees its device through ``CUDA_VISIBLE_DEVICES`` (UUID, else index);
    a MIG instance declared without its uuid cannot be named there, so every task
    leased on it would fail. Checking up front turns that into one error.

    :raises ConfigError: naming the first such device (and how many more there are).
    Cost: O(devices).
    """
    from hwaware_plugins.hardware._pinning import cuda_visible_value

    problems: list[str] = []
    for device in getattr(pool, "devices", ()):
        if device.is_accelerator:
            try:
                cuda_visible_value(device)
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        more = f" (and {len(problems) - 1} more such devices)" if len(problems) > 1 else ""
        raise ConfigError(f"{problems[0]}{more}; worker processes are pinned by it")


def default_workers(pool: Any) -> int:
    """Tasks placed at once by default: the slot count, four per device when memory-packed."""
    devices = getattr(pool, "devices", None)
    if not devices:
        return os.cpu_count() or 1
    if getattr(pool, "packing", "exclusive") == "memory":
        return 4 * len(devices)
    return max(1, sum(max(1, int(getattr(d, "slots", 1))) for d in devices))


def check_settings(
    *, max_workers: Any, timeout: Any, max_oom_retries: Any, oom_growth: Any,
    kill_grace_s: Any, python: Any,
) -> None:
    """Raise a one-line :class:`ConfigError` naming the first invalid executor setting."""
    if max_workers is not None:
        check_int("max_workers", max_workers, 1)
    check_positive("timeout", timeout)
    check_int("max_oom_retries", max_oom_retries, 0)
    check_positive("oom_growth", oom_growth)
    if oom_growth <= 1:
        raise ConfigError(f"oom_growth must be > 1, got {oom_growth!r}")
    check_positive("kill_grace_s", kill_grace_s, allow_zero=True)
    if not python or not os.access(python, os.X_OK):
        raise ConfigError(
            f"python {python!r} is not an executable; pass the interpreter path"
        )


def check_worker_settings(
    *, max_tasks_per_worker: Any, memory_leak_mb: Any, max_kept_processes: Any
) -> None:
    """Raise a one-line :class:`ConfigError` naming the first invalid worker setting."""
    check_int("max_tasks_per_worker", max_tasks_per_worker, 1, or_none=True)
    check_positive("memory_leak_mb", memory_leak_mb, allow_zero=True)
    if memory_leak_mb is None:
        raise ConfigError("memory_leak_mb must be a number of MiB >= 0, got None")
    check_int("max_kept_processes", max_kept_processes, 0)
