"""How the CPU slots of one host share its cores: affinity sets and thread counts.

Every CPU slot of a host (a probed ``cpu`` device, ``kind = "cpu"`` entries,
``count = N``) runs on the same cores, so the slots are given shares of them
instead of every slot getting every core: a slot's process is pinned to its
cores and sizes its thread pools (OpenMP, MKL, OpenBLAS, torch) to its share.
Pure functions; nothing here reads the machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hwaware_plugins.hardware._device import Device


@dataclass(frozen=True)
class CoreShare:
    """The cores one CPU slot runs on and the threads it may use.

    :param cores: core ids for the slot's CPU affinity (never empty).
    :param threads: threads the slot's pools should start, ``1 <= threads <= len(cores)``;
        fewer than ``len(cores)`` when the slot shares its cores with other slots.
    """

    cores: tuple[int, ...]
    threads: int


def split_cores(core_ids: Sequence[int], parts: int) -> list[CoreShare]:
    """Share ``core_ids`` among ``parts`` slots without oversubscribing them.

    With at least as many cores as parts: contiguous disjoint groups whose sizes
    differ by at most one, each slot using as many threads as it has cores.
    With fewer cores: every slot may run on all of them (the kernel balances
    the load) and uses ``max(1, cores // parts)`` = 1 thread. Cost O(cores + parts).

    :raises ValueError: no core or no part.
    """
    if parts < 1 or not core_ids:
        raise ValueError("split_cores needs at least one core and one part")
    count = len(core_ids)
    if count < parts:
        shared = tuple(core_ids)
        return [CoreShare(shared, max(1, count // parts)) for _ in range(parts)]
    size, extra = divmod(count, parts)
    shares: list[CoreShare] = []
    start = 0
    for index in range(parts):
        stop = start + size + (1 if index < extra else 0)
        shares.append(CoreShare(tuple(core_ids[start:stop]), stop - start))
        start = stop
    return shares


def _host_shares(devices: Sequence[Device], core_ids: Sequence[int]) -> dict[str, list[CoreShare]]:
    """The shares of the CPU devices of one host (see :func:`cpu_slot_shares`)."""
    count = len(core_ids)
    shares: dict[str, list[CoreShare]] = {}
    start = 0
    for device in devices:
        if device.cores is None:
            continue
        take = min(device.cores, count)
        block = [core_ids[(start + offset) % count] for offset in range(take)]
        start += take
        shares[device.id] = split_cores(block, device.slots)
    rest = list(core_ids[start:]) if start < count else list(core_ids)
    open_devices = [device for device in devices if device.cores is None]
    if open_devices:
        pooled = iter(split_cores(rest, sum(device.slots for device in open_devices)))
        for device in open_devices:
            shares[device.id] = [next(pooled) for _ in range(device.slots)]
    return shares


def cpu_slot_shares(
    devices: Sequence[Device], core_ids: Sequence[int]
) -> Mapping[str, list[CoreShare]]:
    """Per CPU device id, one :class:`CoreShare` per slot; a host's CPU devices share ``core_ids``.

    Per host, in device order: a device that names its ``cores`` takes that
    many cores (the next ones; at most all of them; declarations beyond the
    host's cores wrap around and overlap), then the devices without ``cores``
    split the cores left over (all cores when none are left) among all their
    slots with :func:`split_cores`; a device's slots split its block the same
    way. So ``count = 3`` CPU devices on 8 cores get 3, 3 and 2 cores, and on
    2 cores all three share both cores with one thread each. GPUs and MIG
    instances are left out. Cost O(devices x slots + cores). Pure.

    :raises ValueError: ``core_ids`` is empty while there are CPU devices.
    """
    by_host: dict[str, list[Device]] = {}
    for device in devices:
        if device.kind == "cpu":
            by_host.setdefault(device.host, []).append(device)
    if by_host and not core_ids:
        raise ValueError("cpu_slot_shares needs at least one core id")
    shares: dict[str, list[CoreShare]] = {}
    for members in by_host.values():
        shares.update(_host_shares(members, core_ids))
    return shares


def thread_count_value(text: str | None) -> int | None:
    """``text`` as a thread count (a positive decimal integer, spaces allowed), else ``None``."""
    value = None if text is None else text.strip()
    if not value or not value.isascii() or not value.isdigit() or int(value) < 1:
        return None
    return int(value)


def capped_thread_count(wanted: int, current: str | None) -> int:
    """The thread count to set: ``wanted``, but never above a positive integer already set.

    ``current`` is the value in the environment (e.g. a user's exported
    ``OMP_NUM_THREADS=1``); anything that is not a positive integer is ignored.
    Pure.
    """
    user = thread_count_value(current)
    return wanted if user is None else min(wanted, user)
