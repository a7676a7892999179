"""The simulated cluster: one entry per worker slot, scaled to a worker count."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.scheduling._base import DeviceClassInfo


def load_devices(path: str | os.PathLike[str]) -> list[Device]:
    """Devices of a declared-device TOML file (see ``hwaware_plugins.hardware``).

    :raises DeviceConfigError: (a :class:`ConfigError`) on any problem with the file.
    """
    from hwaware_plugins.hardware import load_declared_devices

    return list(load_declared_devices(path))


def scaled_slot_counts(slots: Sequence[int], workers: int) -> list[int]:
    """Split ``workers`` over devices in proportion to their slots (largest remainder).

    Ties in the remainders go to the earlier device. The result sums to
    ``workers``; a device may get 0 slots when ``workers`` is below the
    number of devices. Cost: O(D log D).
    """
    total = sum(slots)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if total < 1:
        raise ConfigError("the device file declares no worker slots")
    quotas = [workers * s / total for s in slots]
    counts = [math.floor(q) for q in quotas]
    left = workers - sum(counts)
    by_remainder = sorted(range(len(slots)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    return counts


def build_slots(devices: Sequence[Device], workers: int | None = None) -> list[Device]:
    """One entry per worker slot: each device repeated ``slots`` times.

    With ``workers`` different from the total, the slots of each device class
    are scaled by ``workers / total`` (largest remainder over classes, then
    over the class's devices; :func:`scaled_slot_counts`), so the mix of
    classes is kept as closely as whole slots allow. Cost: O(workers + D log D).
    """
    if not devices:
        raise ConfigError("the device file declares no devices")
    if workers is None or workers == sum(d.slots for d in devices):
        return [d for d in devices for _ in range(d.slots)]
    members: dict[str, list[Device]] = {}
    for d in devices:
        members.setdefault(d.device_class, []).append(d)
    per_class = scaled_slot_counts([sum(d.slots for d in m) for m in members.values()], workers)
    slots: list[Device] = []
    for group, n in zip(members.values(), per_class, strict=True):
        if n == 0:
            continue
        counts = scaled_slot_counts([d.slots for d in group], n)
        slots.extend(d for d, k in zip(group, counts, strict=True) for _ in range(k))
    return slots


def class_infos(
    slots: Sequence[Device], *, with_speedups: bool = False
) -> list[DeviceClassInfo]:
    """One :class:`DeviceClassInfo` per device class of the slots, fastest first.

    speed: mean declared ``speed`` of its slots; slots: how many. In a
    simulation the per-family speedups are the ground truth the clock runs on,
    so schedulers are not told them: ``speedup`` is empty unless
    ``with_speedups`` is true (then: the per-family speeds of the class's
    devices merged, first device wins). Cost: O(slots).
    """
    grouped: dict[str, list[Device]] = {}
    for d in slots:
        grouped.setdefault(d.device_class, []).append(d)
    infos = []
    for name, members in grouped.items():
        speedup: dict[str, float] = {}
        if with_speedups:
            for d in members:
                for fam, value in d.speedup.items():
                    speedup.setdefault(fam, float(value))
        speed = sum(d.speed for d in members) / len(members)
        infos.append(DeviceClassInfo(name=name, speed=speed, slots=len(members), speedup=speedup))
    return sorted(infos, key=lambda c: (-c.speed, c.name))
