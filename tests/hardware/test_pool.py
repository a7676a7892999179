"""DevicePool: slot choice, packing, errors, foreign processes, shared state (one process)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hwaware_plugins
from hwaware_plugins.errors import (
    ConfigError,
    DeviceConfigError,
    HwawareError,
    LeaseTimeoutError,
    NoSuitableDeviceError,
)
from hwaware_plugins.events import LeaseReleased
from hwaware_plugins.hardware._declared import parse_declared_devices
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._leasefile import LeaseFile, LeaseRecord
from hwaware_plugins.hardware._pool import DevicePool


def gpu(i: int, **kw: Any) -> Device:
    kw.setdefault("name", "A100")
    kw.setdefault("memory_total_mb", 40000)
    return Device(id=f"gpu:{i}", kind="gpu", uuid=f"GPU-{i:04d}", index=i, **kw)


def cpu(**kw: Any) -> Device:
    kw.setdefault("memory_total_mb", 64000)
    return Device(id="cpu", kind="cpu", name="Xeon", **kw)


def make_pool(tmp_path: Path, devices: list[Device], **kw: Any) -> DevicePool:
    return DevicePool(devices, state_dir=tmp_path / "state", **kw)


class _Observer:
    def __init__(self) -> None:
        self.events: list[LeaseReleased] = []

    @hwaware_plugins.hookimpl
    def hwaware_lease_released(self, event: LeaseReleased) -> None:
        self.events.append(event)


@pytest.fixture
def observer() -> Iterator[_Observer]:
    seen = _Observer()
    hwaware_plugins.register_plugin(seen, name="test-pool-observer")
    yield seen
    hwaware_plugins.unregister_plugin(seen)


def test_exclusive_slots_hold_one_lease_each(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, [gpu(0), gpu(1)])
    first, second = pool.acquire(timeout=1), pool.acquire(timeout=1)
    assert {first.slot_id, second.slot_id} == {"gpu:0#0", "gpu:1#0"}
    assert pool.try_acquire() is None
    first.release()
    again = pool.try_acquire()
    assert again is not None and again.slot_id == first.slot_id


def test_cpu_slots_split_the_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "hwaware_plugins.hardware._pool_config.available_cores", lambda: list(range(16))
    )
    pool = make_pool(tmp_path, [cpu(cores=8, slots=3)])
    leases = [pool.acquire(timeout=1) for _ in range(3)]
    assert [lease.cpu_affinity for lease in leases] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert [lease.env({})["OMP_NUM_THREADS"] for lease in leases] == ["3", "3", "2"]
    assert all(lease.env({})["CUDA_VISIBLE_DEVICES"] == "" for lease in leases)
    assert pool.try_acquire() is None


@pytest.mark.parametrize(
    ("host_cores", "affinities", "threads"),
    [
        (8, [[0, 1, 2], [3, 4, 5], [6, 7]], ["3", "3", "2"]),
        (2, [[0, 1], [0, 1], [0, 1]], ["1", "1", "1"]),
    ],
)
def test_count_n_cpu_slots_share_the_cores(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host_cores: int,
    affinities: list[list[int]],
    threads: list[str],
) -> None:
    # kind = "cpu", count = 3: on old main each slot got every core and that many threads.
    monkeypatch.setattr(
        "hwaware_plugins.hardware._pool_config.available_cores", lambda: list(range(host_cores))
    )
    devices = parse_declared_devices('[[device]]\nkind = "cpu"\ncount = 3\n')
    pool = make_pool(tmp_path, devices)
    leases = [pool.acquire(timeout=1) for _ in range(3)]
    assert [lease.cpu_affinity for lease in leases] == affinities
    assert [lease.env({})["OMP_NUM_THREADS"] for lease in leases] == threads
    assert [lease.env({"OMP_NUM_THREADS": "1"})["OMP_NUM_THREADS"] for lease in leases] == ["1"] * 3


def test_memory_packing_stays_within_the_budget(tmp_path: Path) -> None:
    pool = make_pool(
        tmp_path, [gpu(0, memory_total_mb=10000)], packing="memory", memory_fraction=0.9
    )
    a, b = pool.acquire(memory_mb=4000, timeout=1), pool.acquire(memory_mb=4000, timeout=1)
    assert a.slot_id == b.slot_id == "gpu:0#mem"
    assert pool.try_acquire(memory_mb=1500) is None  # 9500 > 9000
    assert pool.try_acquire() is None  # a whole-device lease waits for an empty device
    c = pool.acquire(memory_mb=1000, timeout=1)
    capacity = pool.free_capacity()["gpu:0"]
    assert capacity.memory_leased_mb == 9000 and capacity.memory_available_mb == 0
    for lease in (a, b, c):
        lease.release()
    whole = pool.acquire(timeout=1)
    assert pool.try_acquire(memory_mb=1) is None
    whole.release()
    assert pool.try_acquire(memory_mb=1) is not None


def test_memory_budget_uses_free_memory_when_known(tmp_path: Path) -> None:
    device = gpu(0, memory_total_mb=40000, memory_free_mb=2000)
    pool = make_pool(tmp_path, [device], packing="memory", memory_fraction=0.5)
    with pytest.raises(NoSuitableDeviceError, match=r"gpu:0: memory budget 1000 MiB < 1500 MiB"):
        pool.acquire(memory_mb=1500)
    assert pool.acquire(memory_mb=1000, timeout=1).slot_id == "gpu:0#mem"


def test_memory_packing_leaves_cpu_slots_exclusive(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, [cpu(cores=2, slots=1)], packing="memory")
    pool.acquire(memory_mb=10, timeout=1)
    assert pool.try_acquire(memory_mb=10) is None


def test_memory_packing_picks_the_best_fit(tmp_path: Path) -> None:
    big, small = gpu(0, memory_total_mb=10000), gpu(1, memory_total_mb=6000)
    pool = make_pool(tmp_path, [big, small], packing="memory", memory_fraction=1.0)
    assert pool.acquire(memory_mb=5000, timeout=1).device.id == "gpu:1"
    assert pool.acquire(memory_mb=5000, timeout=1).device.id == "gpu:0"
    assert pool.acquire(memory_mb=1000, timeout=1).device.id == "gpu:1"  # 0 left vs 4000


def test_fastest_device_first_then_device_order(tmp_path: Path) -> None:
    devices = [gpu(0, speed=1.0), gpu(1, speed=3.0), gpu(2, speed=3.0)]
    pool = make_pool(tmp_path, devices)
    assert [pool.acquire(timeout=1).device.id for _ in range(3)] == ["gpu:1", "gpu:2", "gpu:0"]


def test_prefer_orders_device_classes_before_speed(tmp_path: Path) -> None:
    devices = [gpu(0, speed=4.0, name="A100"), gpu(1, speed=2.0, name="V100"), cpu(cores=1)]
    pool = make_pool(tmp_path, devices)
    order = ["cpu", "V100"]
    assert [pool.acquire(prefer=order, timeout=1).device.id for _ in range(3)] == [
        "cpu",
        "gpu:1",
        "gpu:0",
    ]


def test_device_filter_restricts_the_choice(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, [gpu(0, speed=9.0), gpu(1)])
    lease = pool.acquire(device_filter=lambda d: d.id == "gpu:1", timeout=1)
    assert lease.device.id == "gpu:1"
    with pytest.raises(LeaseTimeoutError):
        pool.acquire(device_filter=lambda d: d.id == "gpu:1", timeout=0)


def test_impossible_requests_fail_at_once_naming_each_device(tmp_path: Path) -> None:
    devices = [gpu(0, memory_total_mb=1000), gpu(1, foreign_processes=2), cpu(cores=1)]
    pool = make_pool(tmp_path, devices, memory_fraction=1.0)
    started = time.monotonic()
    with pytest.raises(NoSuitableDeviceError) as caught:
        pool.acquire(memory_mb=5000, device_filter=lambda d: d.kind == "gpu")
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert "gpu:0: memory budget 1000 MiB < 5000 MiB needed" in message
    assert "gpu:1: busy with 2 foreign processes" in message
    assert "cpu: excluded by device_filter" in message
    assert "\n" not in message
    with pytest.raises(NoSuitableDeviceError, match="excluded by device_filter"):
        pool.try_acquire(device_filter=lambda d: False)


def test_timeout_raises_lease_timeout_error(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, [gpu(0)], name="busy")
    pool.acquire(timeout=1)
    started = time.monotonic()
    with pytest.raises(LeaseTimeoutError, match=r"pool 'busy'.*within 0\.2 s"):
        pool.acquire(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 1.5


def test_acquire_waits_until_another_thread_releases(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, [gpu(0)])
    held = pool.acquire(timeout=1)
    timer = threading.Timer(0.1, held.release)
    timer.start()
    lease = pool.acquire(timeout=5)
    timer.join()
    assert lease.slot_id == held.slot_id and held.released


def test_release_is_idempotent(tmp_path: Path, observer: _Observer) -> None:
    pool = make_pool(tmp_path, [gpu(0)], name="idem")
    lease = pool.acquire(timeout=1)
    lease.release()
    lease.release()
    assert lease.released and pool.active_leases() == []
    assert observer.events == [LeaseReleased("idem", "gpu:0#0", "gpu:0", os.getpid(), False)]
    other = pool.acquire(timeout=1)
    lease.release()  # the stale handle must not free the new holder's slot
    assert [r.lease_id for r in pool.active_leases()] == [other.lease_id]


def test_context_manager_releases_on_exception(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, [gpu(0)])
    with pytest.raises(RuntimeError), pool.acquire(timeout=1) as lease:
        raise RuntimeError("trial failed")
    assert lease.released and pool.active_leases() == []


def test_devices_busy_with_foreign_processes_are_skipped(tmp_path: Path) -> None:
    devices = [gpu(0, speed=5.0, foreign_processes=1), gpu(1)]
    assert make_pool(tmp_path, devices, name="skip").acquire(timeout=1).device.id == "gpu:1"
    shared = make_pool(tmp_path, devices, name="share", skip_foreign_processes=False)
    assert shared.acquire(timeout=1).device.id == "gpu:0"


def test_foreign_processes_skip_cpus_only_with_cpu_courtesy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = [cpu(cores=1, foreign_processes=2)]
    assert make_pool(tmp_path, busy, name="c1").acquire(timeout=1).device.id == "cpu"
    with pytest.raises(NoSuitableDeviceError, match="busy with 2 foreign processes"):
        make_pool(tmp_path, busy, name="c2", cpu_courtesy=True).acquire(timeout=1)
    monkeypatch.setenv("HWAWARE_CPU_COURTESY", "1")
    assert make_pool(tmp_path, busy, name="c3").cpu_courtesy
    assert not make_pool(tmp_path, busy, name="c4", cpu_courtesy=False).cpu_courtesy


_HOLDER = """
import sys
from hwaware_plugins.hardware._declared import parse_declared_devices
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._pool import DevicePool
devices = [Device(id="cpu", kind="cpu", name="Xeon", cores=2, slots=2),
           Device(id="gpu:0", kind="gpu", name="A100", uuid="GPU-0", index=0)]
pool = DevicePool(devices, name="family", state_dir=sys.argv[1])
leases = [pool.acquire(timeout=5) for _ in range(3)]
print(",".join(sorted(lease.slot_id for lease in leases)), flush=True)
sys.stdin.read()
"""


def test_cpu_slots_are_not_blocked_by_another_process_family(tmp_path: Path) -> None:
    # Another study's process holds every slot of the same pool name. On old main this
    # process could lease no CPU slot until it let go (trials ran one at a time).
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "state")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "cpu#0,cpu#1,gpu:0#0"
        devices = [cpu(cores=2, slots=2), gpu(0)]
        polite = make_pool(tmp_path, devices, name="family", cpu_courtesy=True)
        assert polite.try_acquire() is None  # asked for courtesy: every slot is taken
        pool = make_pool(tmp_path, devices, name="family")
        mine = [pool.try_acquire(), pool.try_acquire()]
        assert sorted(lease.slot_id for lease in mine if lease) == ["cpu#0", "cpu#1"]
        assert pool.try_acquire() is None  # the GPU stays the other process's
        assert len(pool.active_leases()) == 5
    finally:
        holder.communicate("", timeout=10)


def test_foreign_process_check_is_rerun_at_each_acquire(tmp_path: Path) -> None:
    live = {"gpu:0": 1, "gpu:1": 0}
    calls: list[str] = []

    def check(device: Device) -> int:
        calls.append(device.id)
        return live[device.id]

    pool = make_pool(tmp_path, [gpu(0, speed=5.0), gpu(1)], foreign_process_check=check)
    first = pool.acquire(timeout=1)
    assert first.device.id == "gpu:1" and calls == ["gpu:0", "gpu:1"]
    first.release()
    live["gpu:0"] = 0
    assert pool.acquire(timeout=1).device.id == "gpu:0"
    live.update({"gpu:0": 1, "gpu:1": 3})
    with pytest.raises(NoSuitableDeviceError, match="gpu:0: busy with 1 foreign process; gpu:1"):
        pool.acquire(timeout=1)


def test_lease_env_pins_the_child(tmp_path: Path) -> None:
    mig = Device(id="gpu:0/mig:1", kind="mig", name="1g.5gb", uuid="MIG-abc", memory_total_mb=4864)
    pool = make_pool(tmp_path, [mig])
    lease = pool.acquire(timeout=1)
    env = lease.env({"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "CUDA_VISIBLE_DEVICES": "MIG-abc",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "HWAWARE_DEVICE_ID": "gpu:0/mig:1",
        "HWAWARE_DEVICE_CLASS": "1g.5gb",
        "HWAWARE_DEVICE_KIND": "mig",
        "HWAWARE_LEASE_ID": lease.lease_id,
    }
    assert lease.cpu_affinity is None
    assert lease.env()["PATH"] == os.environ["PATH"]


def test_state_is_shared_by_pools_of_the_same_name(tmp_path: Path) -> None:
    first = make_pool(tmp_path, [gpu(0)], name="shared")
    lease = first.acquire(timeout=1, label="trial-7")
    second = make_pool(tmp_path, [gpu(0)], name="shared")
    (record,) = second.active_leases()
    assert (record.lease_id, record.label, record.pid) == (lease.lease_id, "trial-7", os.getpid())
    assert second.try_acquire() is None
    assert make_pool(tmp_path, [gpu(0)], name="other").try_acquire() is not None
    lease.release()
    assert second.try_acquire() is not None


def test_a_pool_configured_differently_still_sees_the_device_taken(tmp_path: Path) -> None:
    make_pool(tmp_path, [gpu(0)], name="mixed").acquire(timeout=1)
    packed = make_pool(tmp_path, [gpu(0)], name="mixed", packing="memory")
    assert packed.try_acquire(memory_mb=10) is None


def test_record_of_a_reused_pid_is_reclaimed(tmp_path: Path, observer: _Observer) -> None:
    pool = make_pool(tmp_path, [gpu(0)], name="reuse")
    store = LeaseFile(tmp_path / "state", "reuse")
    stale = LeaseRecord("old", "gpu:0#0", "gpu:0", None, os.getpid(), 1.0, 1, None, 0.0)
    with store.transaction() as records:
        records.append(stale)
    assert pool.acquire(timeout=1).slot_id == "gpu:0#0"
    assert observer.events == [LeaseReleased("reuse", "gpu:0#0", "gpu:0", os.getpid(), True)]
    with store.transaction() as records:
        records.append(stale)
    assert pool.reclaim_dead() == 1


def test_release_all_of_pid_frees_its_leases(tmp_path: Path, observer: _Observer) -> None:
    pool = make_pool(tmp_path, [gpu(0), gpu(1)], name="crash")
    leases = [pool.acquire(timeout=1) for _ in range(2)]
    assert pool.release_all_of_pid(os.getpid()) == 2
    assert all(lease.released for lease in leases)
    assert [e.reclaimed for e in observer.events] == [True, True]
    assert pool.release_all_of_pid(os.getpid()) == 0


def test_close_releases_own_leases_and_refuses_new_ones(tmp_path: Path) -> None:
    with make_pool(tmp_path, [gpu(0), gpu(1)], name="closing") as pool:
        lease = pool.acquire(timeout=1)
    assert lease.released
    assert make_pool(tmp_path, [gpu(0), gpu(1)], name="closing").active_leases() == []
    with pytest.raises(HwawareError, match="closed"):
        pool.acquire(timeout=1)
    pool.close()


def test_free_capacity_reports_slots_and_usability(tmp_path: Path) -> None:
    pool = make_pool(tmp_path, [gpu(0, foreign_processes=1), cpu(cores=2, slots=2)])
    pool.acquire(timeout=1)
    capacity = pool.free_capacity()
    assert list(capacity) == ["gpu:0", "cpu"]
    assert (capacity["gpu:0"].usable, capacity["gpu:0"].slots_free) == (False, 1)
    assert (capacity["cpu"].slots_total, capacity["cpu"].slots_free, capacity["cpu"].leases) == (
        2,
        1,
        1,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"packing": "tight"}, "unknown packing 'tight'"),
        ({"memory_fraction": 1.5}, r"memory_fraction must be in \(0, 1\]"),
        ({"name": "../x"}, "invalid pool name"),
    ],
)
def test_bad_options_fail_on_first_use(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    pool = make_pool(tmp_path, [gpu(0)], **kwargs)  # constructing never validates
    with pytest.raises(ConfigError, match=message):
        pool.acquire(timeout=1)


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ([], "at least one device"),
        ([gpu(0), gpu(0)], "'gpu:0' appears twice"),
        ([cpu(slots=0)], "slots=0"),
    ],
)
def test_bad_device_lists(tmp_path: Path, devices: list[Device], message: str) -> None:
    with pytest.raises(DeviceConfigError, match=message):
        make_pool(tmp_path, devices).free_capacity()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_mb": -1}, "memory_mb must be a positive"),
        ({"memory_mb": float("nan")}, "memory_mb must be a positive"),
        ({"prefer": "gpu"}, "wrap a single name in a list"),
        ({"timeout": -1}, "timeout must be None or a number"),
        ({"label": 7}, "label must be a string"),
    ],
)
def test_bad_requests(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_pool(tmp_path, [gpu(0)]).acquire(**kwargs)


def test_default_state_dir_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    pool = DevicePool([gpu(0)], name="defaulted")
    pool.acquire(timeout=1)
    folder = tmp_path / "run" / "hwaware"
    assert (folder / "defaulted.json").is_file()
    assert folder.stat().st_mode & 0o777 == 0o700
