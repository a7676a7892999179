"""Pure slot rules: slot building, fit, ranking, capacity summary (core shares: test_cores)."""

from __future__ import annotations

from typing import Any

from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._leasefile import LeaseRecord
from hwaware_plugins.hardware._pool_slots import (
    build_slots,
    capacity_of,
    choose_slot,
    counted_records,
    holdings,
    leftover_if_placed,
    memory_budget_mb,
    prefer_rank,
    unsuitable_reason,
)


def gpu(i: int, **kw: Any) -> Device:
    kw.setdefault("memory_total_mb", 1000)
    return Device(id=f"gpu:{i}", kind="gpu", name=kw.pop("name", "G"), uuid=f"GPU-{i}", **kw)


def rec(slot_id: str, device_id: str, memory_mb: float | None) -> LeaseRecord:
    return LeaseRecord("id", slot_id, device_id, memory_mb, 1, 0.0, 0, None, 0.0)


def anything(device: Device) -> bool:
    return True


def test_build_slots_per_packing() -> None:
    devices = [gpu(0, slots=2), Device(id="cpu", kind="cpu", name="C", cores=4, slots=2)]
    exclusive = build_slots(devices, packing="exclusive", memory_fraction=0.5, core_ids=range(8))
    assert [(s.slot_id, s.cores, s.shared) for s in exclusive] == [
        ("gpu:0#0", None, False),
        ("gpu:0#1", None, False),
        ("cpu#0", (0, 1), False),
        ("cpu#1", (2, 3), False),
    ]
    packed = build_slots(devices, packing="memory", memory_fraction=0.5, core_ids=range(8))
    assert (packed[0].slot_id, packed[0].shared, packed[0].budget_mb) == ("gpu:0#mem", True, 500.0)
    assert len(packed) == 3


def test_build_slots_gives_count_n_cpu_devices_disjoint_shares() -> None:
    # kind = "cpu", count = 3 declares three devices without cores: on old main every
    # slot got all 8 cores (and 8 threads); now they split the host's cores.
    cpus = [Device(id=f"h/cpu:{i}", kind="cpu", name="C", host="h") for i in range(3)]
    slots = build_slots(cpus, packing="exclusive", memory_fraction=1.0, core_ids=range(8))
    assert [(s.cores, s.threads) for s in slots] == [
        ((0, 1, 2), 3),
        ((3, 4, 5), 3),
        ((6, 7), 2),
    ]


def test_memory_budget_prefers_free_memory() -> None:
    assert memory_budget_mb(gpu(0, memory_free_mb=400), 0.5) == 200
    assert memory_budget_mb(gpu(0), 0.5) == 500
    assert memory_budget_mb(gpu(0, memory_total_mb=None), 0.5) is None


def test_leftover_on_shared_and_exclusive_slots() -> None:
    (shared,) = build_slots([gpu(0)], packing="memory", memory_fraction=1.0, core_ids=[0])
    assert leftover_if_placed(shared, [], 300) == 700
    assert leftover_if_placed(shared, [300, 300], 400) == 0
    assert leftover_if_placed(shared, [300, 300], 401) is None
    assert leftover_if_placed(shared, [None], 1) is None
    assert leftover_if_placed(shared, [300], None) is None
    assert leftover_if_placed(shared, [], 1001) is None
    (alone,) = build_slots([gpu(0)], packing="exclusive", memory_fraction=1.0, core_ids=[0])
    assert leftover_if_placed(alone, [], 10) == 0.0
    assert leftover_if_placed(alone, [10], 10) is None


def test_unknown_memory_makes_a_shared_slot_exclusive() -> None:
    (shared,) = build_slots(
        [gpu(0, memory_total_mb=None)], packing="memory", memory_fraction=1.0, core_ids=[0]
    )
    assert leftover_if_placed(shared, [], 5000) == 0.0
    assert leftover_if_placed(shared, [10], 10) is None


def test_choose_slot_ranks_prefer_then_speed_then_fit_then_order() -> None:
    devices = [gpu(0, memory_total_mb=900), gpu(1, memory_total_mb=600), gpu(2, speed=2.0)]
    slots = build_slots(devices, packing="memory", memory_fraction=1.0, core_ids=[0])
    empty = holdings(slots, [])
    pick = choose_slot(slots, empty, memory_mb=500, prefer=None, usable=anything)
    assert pick is not None and pick.device.id == "gpu:2"  # fastest
    pick = choose_slot(slots, empty, memory_mb=500, prefer=["gpu:0", "gpu:1"], usable=anything)
    assert pick is not None and pick.device.id == "gpu:0"  # preferred
    slow = [s for s in slots if s.device.id != "gpu:2"]
    pick = choose_slot(slow, empty, memory_mb=500, prefer=None, usable=anything)
    assert pick is not None and pick.device.id == "gpu:1"  # best fit
    pick = choose_slot(slow, empty, memory_mb=None, prefer=None, usable=anything)
    assert pick is not None and pick.device.id == "gpu:0"  # device order
    never = choose_slot(slots, empty, memory_mb=10, prefer=None, usable=lambda d: False)
    assert never is None


def test_prefer_rank_matches_class_kind_or_id() -> None:
    device = gpu(0, name="A100")
    assert [prefer_rank(device, p) for p in (None, ["cpu", "A100"], ["gpu"], ["gpu:0"], ["x"])] == [
        0,
        1,
        0,
        0,
        1,
    ]


def test_records_of_unknown_slots_block_their_device() -> None:
    slots = build_slots([gpu(0), gpu(1)], packing="memory", memory_fraction=1.0, core_ids=[0])
    held = holdings(slots, [rec("gpu:0#0", "gpu:0", None), rec("x#0", "elsewhere", 5)])
    assert held == {"gpu:0#mem": [None], "gpu:1#mem": []}


def test_capacity_summary() -> None:
    devices = [gpu(0), Device(id="cpu", kind="cpu", name="C", cores=2, slots=2)]
    slots = build_slots(devices, packing="memory", memory_fraction=1.0, core_ids=[0, 1])
    held = holdings(slots, [rec("gpu:0#mem", "gpu:0", 400), rec("cpu#1", "cpu", None)])
    summary = capacity_of(devices, slots, held, usable=lambda d: d.kind == "gpu")
    assert summary["gpu:0"].memory_available_mb == 600 and summary["gpu:0"].slots_free == 1
    assert (summary["cpu"].slots_free, summary["cpu"].usable) == (1, False)


def test_unsuitable_reason_order() -> None:
    device = gpu(0)
    assert unsuitable_reason(device, memory_mb=5, budget_mb=1, excluded=True, foreign=3) == (
        "excluded by device_filter"
    )
    assert unsuitable_reason(device, memory_mb=5, budget_mb=1, excluded=False, foreign=1) == (
        "busy with 1 foreign process"
    )
    assert unsuitable_reason(device, memory_mb=5, budget_mb=None, excluded=False, foreign=0) is None


def test_cpu_records_of_other_process_families_do_not_count_without_courtesy() -> None:
    cpu = Device(id="cpu", kind="cpu", name="C", cores=2, slots=2)
    mine, theirs, old, on_gpu = (
        LeaseRecord("a", "cpu#0", "cpu", None, 1, 0.0, 0, None, 0.0, family="me"),
        LeaseRecord("b", "cpu#1", "cpu", None, 2, 0.0, 0, None, 0.0, family="other"),
        LeaseRecord("c", "cpu#1", "cpu", None, 3, 0.0, 0, None, 0.0),
        LeaseRecord("d", "gpu:0#0", "gpu:0", None, 2, 0.0, 0, None, 0.0, family="other"),
    )
    records = [mine, theirs, old, on_gpu]
    devices = [cpu, gpu(0)]
    assert counted_records(records, devices, family="me", cpu_courtesy=False) == [mine, on_gpu]
    assert counted_records(records, devices, family="me", cpu_courtesy=True) == records
