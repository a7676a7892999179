"""Validation of device-pool options and requests, and the pool's resolved set-up."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hwaware_plugins.errors import ConfigError, DeviceConfigError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._leasefile import LeaseFile, default_state_dir, ensure_state_dir
from hwaware_plugins.hardware._pool_slots import PACKINGS, Slot, build_slots

CPU_COURTESY_ENV = "HWAWARE_CPU_COURTESY"
"""Set to ``1`` to give CPU devices the courtesy GPUs get (see ``DevicePool(cpu_courtesy=)``)."""

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class PoolSetup:
    """A validated pool: its devices, slots and state file."""

    devices: tuple[Device, ...]
    slots: tuple[Slot, ...]
    store: LeaseFile


def prepare_pool(
    devices: Sequence[Device],
    *,
    name: str,
    packing: str,
    memory_fraction: float,
    foreign_process_check: Callable[[Device], int] | None,
    state_dir: str | os.PathLike[str] | None,
) -> PoolSetup:
    """Validate a pool's options and build its slots and state file.

    Cost: a few checks, one ``mkdir``/``stat`` of the state folder.

    :raises ConfigError: the first invalid option (``DeviceConfigError`` for the devices).
    """
    check_pool_options(
        name=name,
        packing=packing,
        memory_fraction=memory_fraction,
        foreign_process_check=foreign_process_check,
    )
    frozen = tuple(devices)
    check_devices(frozen)
    directory = resolve_state_dir(state_dir)
    slots = build_slots(
        frozen, packing=packing, memory_fraction=memory_fraction, core_ids=available_cores()
    )
    return PoolSetup(frozen, tuple(slots), LeaseFile(directory, name))


def check_pool_options(
    *,
    name: object,
    packing: object,
    memory_fraction: object,
    foreign_process_check: Callable[[Device], int] | None,
) -> None:
    """Raise :class:`ConfigError` naming the first invalid ``DevicePool`` option."""
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"invalid pool name {name!r}; use 1-100 letters, digits, '.', '_' or '-'")
    if packing not in PACKINGS:
        raise ConfigError(f"unknown packing {packing!r}; use one of {', '.join(PACKINGS)}")
    if (
        isinstance(memory_fraction, bool)
        or not isinstance(memory_fraction, (int, float))
        or not (0 < memory_fraction <= 1)
    ):
        raise ConfigError(f"memory_fraction must be in (0, 1], got {memory_fraction!r}")
    if foreign_process_check is not None and not callable(foreign_process_check):
        raise ConfigError("foreign_process_check must be a callable taking a Device, or None")


def resolve_state_dir(state_dir: str | os.PathLike[str] | None) -> Path:
    """The state folder, created if needed; the default one must be private to this user."""
    if state_dir is None:
        return ensure_state_dir(default_state_dir(), private=True)
    return ensure_state_dir(Path(state_dir), private=False)


def available_cores() -> list[int]:
    """Core ids this process may run on (``os.sched_getaffinity``), sorted."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def cpu_courtesy_setting(value: bool | None) -> bool:
    """``DevicePool(cpu_courtesy=)``: the value given, else ``HWAWARE_CPU_COURTESY == "1"``."""
    if value is None:
        return os.environ.get(CPU_COURTESY_ENV, "").strip() == "1"
    return bool(value)


def check_request(
    memory_mb: float | None,
    prefer: Sequence[str] | None,
    timeout: float | None,
    label: str | None,
) -> None:
    """Raise :class:`ConfigError` naming the first invalid ``acquire`` argument."""
    if memory_mb is not None and (
        isinstance(memory_mb, bool)
        or not isinstance(memory_mb, (int, float))
        or not math.isfinite(memory_mb)
        or memory_mb <= 0
    ):
        raise ConfigError(f"memory_mb must be a positive number of MiB or None, got {memory_mb!r}")
    if prefer is not None and (
        isinstance(prefer, str) or not all(isinstance(p, str) for p in prefer)
    ):
        raise ConfigError(
            f"prefer must be a list of device classes, kinds or ids, got {prefer!r}"
            " (wrap a single name in a list)"
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0
    ):
        raise ConfigError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
    if label is not None and not isinstance(label, str):
        raise ConfigError(f"label must be a string or None, got {type(label).__name__}")


def check_devices(devices: Sequence[object]) -> None:
    """Raise :class:`DeviceConfigError` for no devices, non-devices, duplicate ids or slots < 1."""
    if not devices:
        raise DeviceConfigError("a DevicePool needs at least one device; probe or declare devices")
    seen: set[str] = set()
    for device in devices:
        if not isinstance(device, Device):
            raise DeviceConfigError(
                f"DevicePool devices must be hwaware_plugins.hardware.Device, got {device!r}"
            )
        if device.id in seen:
            raise DeviceConfigError(
                f"device id {device.id!r} appears twice; device ids must be unique"
            )
        if device.slots < 1:
            raise DeviceConfigError(f"device {device.id!r} has slots={device.slots}; use 1 or more")
        seen.add(device.id)
