"""Slots of a device pool and the pure rules that decide which one a lease gets.

Nothing here touches files, locks or processes: the pool feeds these functions
the active lease records and applies the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hwaware_plugins.hardware._cores import cpu_slot_shares
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._leasefile import LeaseRecord

PACKINGS: tuple[str, ...] = ("exclusive", "memory")
"""``exclusive``: one lease per slot; ``memory``: a GPU/MIG holds leases while their needs fit."""

_EPSILON_MB = 1e-9

Holdings = Mapping[str, Sequence[float | None]]
"""Slot id -> memory needs of the leases on it (``None``: a lease taking the whole device)."""


@dataclass(frozen=True)
class Slot:
    """A place one lease (exclusive) or several leases (memory-packed) can occupy.

    :param slot_id: ``"<device id>#<index>"``, or ``"<device id>#mem"`` when shared.
    :param device: the device.
    :param position: the device's position in the pool (the last tie-break).
    :param index: the slot's index on its device.
    :param cores: CPU core ids for affinity (CPU slots), else ``None``.
    :param shared: True for a memory-packed GPU/MIG slot.
    :param budget_mb: the memory leases may use on the device, ``None`` if unknown.
    :param threads: threads a CPU slot's pools may use (its share of the cores), else ``None``.
    """

    slot_id: str
    device: Device
    position: int
    index: int
    cores: tuple[int, ...] | None
    shared: bool
    budget_mb: float | None
    threads: int | None = None


@dataclass(frozen=True)
class DeviceCapacity:
    """What a device can still take, as reported by ``DevicePool.free_capacity``.

    ``memory_available_mb`` is the budget left for memory-packed leases (``None``
    when the device's memory is unknown); ``usable`` is False while the device is
    skipped for foreign processes.
    """

    device_id: str
    device_class: str
    kind: str
    slots_total: int
    slots_free: int
    leases: int
    memory_budget_mb: float | None
    memory_leased_mb: float
    memory_available_mb: float | None
    usable: bool


def memory_budget_mb(device: Device, memory_fraction: float) -> float | None:
    """``memory_fraction`` of the device's free memory (its total when free is unknown)."""
    base = device.memory_free_mb if device.memory_free_mb is not None else device.memory_total_mb
    return None if base is None else memory_fraction * base


def build_slots(
    devices: Sequence[Device],
    *,
    packing: str,
    memory_fraction: float,
    core_ids: Sequence[int],
) -> list[Slot]:
    """The slots of a pool, in device order.

    Each device has ``device.slots`` exclusive slots; with ``packing="memory"``
    a GPU/MIG device has one shared slot instead. The CPU slots of a host share
    ``core_ids`` (:func:`~hwaware_plugins.hardware._cores.cpu_slot_shares`):
    each gets its cores for affinity and its thread count.
    """
    shares = cpu_slot_shares(devices, core_ids)
    slots: list[Slot] = []
    for position, device in enumerate(devices):
        budget = memory_budget_mb(device, memory_fraction)
        if packing == "memory" and device.is_accelerator:
            slots.append(Slot(f"{device.id}#mem", device, position, 0, None, True, budget))
            continue
        for index in range(device.slots):
            share = shares[device.id][index] if device.kind == "cpu" else None
            slots.append(
                Slot(
                    f"{device.id}#{index}",
                    device,
                    position,
                    index,
                    None if share is None else share.cores,
                    False,
                    budget,
                    None if share is None else share.threads,
                )
            )
    return slots


def holdings(
    slots: Sequence[Slot], records: Iterable[LeaseRecord]
) -> dict[str, list[float | None]]:
    """Map each slot id to the memory needs of the records on it.

    A record whose slot this pool does not know but whose device it does (a pool
    of the same name configured differently) blocks every slot of that device.
    Records of unknown devices are ignored.
    """
    held: dict[str, list[float | None]] = {slot.slot_id: [] for slot in slots}
    by_device: dict[str, list[str]] = {}
    for slot in slots:
        by_device.setdefault(slot.device.id, []).append(slot.slot_id)
    for record in records:
        if record.slot_id in held:
            held[record.slot_id].append(record.memory_mb)
        else:
            for slot_id in by_device.get(record.device_id, ()):
                held[slot_id].append(None)
    return held


def counted_records(
    records: Sequence[LeaseRecord],
    devices: Sequence[Device],
    *,
    family: str,
    cpu_courtesy: bool,
) -> list[LeaseRecord]:
    """The records that occupy a pool's slots.

    With ``cpu_courtesy`` every record; without it, records on the pool's CPU
    devices count only when their holder is of process ``family`` (this process
    and its forked children), so another study's CPU leases never hold a slot
    back. GPU and MIG records always count. Pure; cost O(records + devices).
    """
    if cpu_courtesy:
        return list(records)
    cpus = {device.id for device in devices if device.kind == "cpu"}
    return [r for r in records if r.device_id not in cpus or r.family == family]


def could_fit(slot: Slot, memory_mb: float | None) -> bool:
    """True when ``memory_mb`` fits the slot's budget with nothing else on it."""
    return memory_mb is None or slot.budget_mb is None or memory_mb <= slot.budget_mb + _EPSILON_MB


def leftover_if_placed(
    slot: Slot, held: Sequence[float | None], memory_mb: float | None
) -> float | None:
    """Budget left on the slot after placing the request, or ``None`` when it does not fit now.

    Exclusive slots report 0.0 when free (best fit only ranks shared slots).
    A lease without a memory need takes a shared slot only when it is empty.
    """
    if not could_fit(slot, memory_mb):
        return None
    if not slot.shared:
        return None if held else 0.0
    if not held:
        if memory_mb is None or slot.budget_mb is None:
            return 0.0
        return slot.budget_mb - memory_mb
    if memory_mb is None or slot.budget_mb is None or any(need is None for need in held):
        return None
    used = sum(need for need in held if need is not None) + memory_mb
    if used > slot.budget_mb + _EPSILON_MB:
        return None
    return slot.budget_mb - used


def prefer_rank(device: Device, prefer: Sequence[str] | None) -> int:
    """Index of the first ``prefer`` entry naming the device's class, kind or id, else ``len``."""
    if not prefer:
        return 0
    for rank, wanted in enumerate(prefer):
        if wanted in (device.device_class, device.kind, device.id):
            return rank
    return len(prefer)


def choose_slot(
    slots: Sequence[Slot],
    held: Holdings,
    *,
    memory_mb: float | None,
    prefer: Sequence[str] | None,
    usable: Callable[[Device], bool],
) -> Slot | None:
    """The slot a new lease gets, or ``None`` when none fits now.

    Order: ``prefer`` rank, then fastest device (``speed``), then best fit
    (least budget left on shared slots), then device order, then slot index.
    Deterministic; cost O(slots + leases).
    """
    best: tuple[tuple[float, ...], Slot] | None = None
    for slot in slots:
        if not usable(slot.device):
            continue
        leftover = leftover_if_placed(slot, held.get(slot.slot_id, ()), memory_mb)
        if leftover is None:
            continue
        key = (
            float(prefer_rank(slot.device, prefer)),
            -slot.device.speed,
            leftover,
            float(slot.position),
            float(slot.index),
        )
        if best is None or key < best[0]:
            best = (key, slot)
    return None if best is None else best[1]


def unsuitable_reason(
    device: Device,
    *,
    memory_mb: float | None,
    budget_mb: float | None,
    excluded: bool,
    foreign: int,
) -> str | None:
    """Why ``device`` can never take the request, or ``None`` when it could."""
    if excluded:
        return "excluded by device_filter"
    if foreign > 0:
        return f"busy with {foreign} foreign process{'es' if foreign != 1 else ''}"
    if memory_mb is not None and budget_mb is not None and memory_mb > budget_mb + _EPSILON_MB:
        return f"memory budget {budget_mb:.0f} MiB < {memory_mb:.0f} MiB needed"
    return None


def capacity_of(
    devices: Sequence[Device],
    slots: Sequence[Slot],
    held: Holdings,
    *,
    usable: Callable[[Device], bool],
) -> dict[str, DeviceCapacity]:
    """Per-device summary of slots and memory left, keyed by device id, in device order."""
    summary: dict[str, DeviceCapacity] = {}
    for device in devices:
        own = [slot for slot in slots if slot.device.id == device.id]
        needs = [need for slot in own for need in held.get(slot.slot_id, ())]
        budget = own[0].budget_mb if own else None
        leased = sum((need for need in needs if need is not None), 0.0)
        whole = any(need is None for need in needs)
        available = None if budget is None else 0.0 if whole else max(0.0, budget - leased)
        free = sum(
            1
            for slot in own
            if not held.get(slot.slot_id)
            or (slot.shared and not whole and budget is not None and budget - leased > _EPSILON_MB)
        )
        summary[device.id] = DeviceCapacity(
            device_id=device.id,
            device_class=device.device_class,
            kind=device.kind,
            slots_total=len(own),
            slots_free=free,
            leases=len(needs),
            memory_budget_mb=budget,
            memory_leased_mb=leased,
            memory_available_mb=available,
            usable=usable(device),
        )
    return summary
