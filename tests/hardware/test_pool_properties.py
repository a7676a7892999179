"""Property tests of the device pool: mutual exclusion across processes and threads,
memory budgets under concurrency, and acquire/release sequences (stateful)."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hwaware_plugins._manager import get_plugin_manager
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._lease import Lease
from hwaware_plugins.hardware._pool import DevicePool

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _gpu(i: int, memory: int = 1000, speed: float = 1.0) -> Device:
    return Device(
        id=f"gpu:{i}", kind="gpu", name="G", uuid=f"GPU-{i}", memory_total_mb=memory, speed=speed
    )


# -- (a) exclusive slots under 8 processes x 4 threads ----------------------------------------


def _hammer(
    devices: list[Device], state_dir: str, markers: str, out: str, rounds: int, seed: int
) -> None:
    pool = DevicePool(devices, name="hammer", state_dir=state_dir)
    intervals: list[tuple[str, int, int]] = []
    problems: list[str] = []

    def holder(thread: int) -> None:
        rng = random.Random(seed * 10 + thread)
        try:
            for _ in range(rounds):
                with pool.acquire(timeout=30, label=f"{os.getpid()}/{thread}") as lease:
                    start = time.monotonic_ns()
                    marker = os.path.join(markers, lease.slot_id)
                    try:
                        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    except FileExistsError:
                        problems.append(f"marker collision on {lease.slot_id}")
                        fd = -1
                    time.sleep(rng.uniform(0.0, 0.002))
                    if fd >= 0:
                        os.close(fd)
                        os.unlink(marker)
                    intervals.append((lease.slot_id, start, time.monotonic_ns()))
        except Exception as exc:  # reported to the parent, which fails the test
            problems.append(repr(exc))

    threads = [threading.Thread(target=holder, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Path(out).write_text(json.dumps({"intervals": intervals, "problems": problems}))


@settings(PROPERTY, max_examples=3)
@given(
    layout=st.sampled_from(["one-gpu", "three-gpus", "cpu-slots"]),
    rounds=st.integers(2, 4),
)
def test_processes_and_threads_never_share_an_exclusive_slot(layout: str, rounds: int) -> None:
    devices = {
        "one-gpu": [_gpu(0)],
        "three-gpus": [_gpu(0), _gpu(1, speed=2.0), _gpu(2)],
        "cpu-slots": [Device(id="cpu", kind="cpu", name="C", cores=2, slots=2)],
    }[layout]
    get_plugin_manager()  # load entry points once here, not in each forked worker's first emit
    root = Path(tempfile.mkdtemp(prefix="hammer-"))
    try:
        (root / "markers").mkdir()
        context = multiprocessing.get_context("fork")  # cheap start; spawn is covered elsewhere
        workers = [
            context.Process(
                target=_hammer,
                args=(
                    devices,
                    str(root / "state"),
                    str(root / "markers"),
                    str(root / f"{n}.json"),
                    rounds,
                    n,
                ),
            )
            for n in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert [w.exitcode for w in workers] == [0] * 8
        per_slot: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for n in range(8):
            report = json.loads((root / f"{n}.json").read_text())
            assert report["problems"] == []
            for slot_id, start, end in report["intervals"]:
                per_slot[slot_id].append((start, end))
        assert sum(len(v) for v in per_slot.values()) == 8 * 4 * rounds
        for slot_id, spans in per_slot.items():
            spans.sort()
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert start >= end, f"two holders overlapped on {slot_id}"
        assert DevicePool(devices, name="hammer", state_dir=root / "state").active_leases() == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- (b) memory packing under concurrent holders -----------------------------------------------


@settings(PROPERTY, max_examples=12)
@given(needs=st.lists(st.integers(1, 900), min_size=2, max_size=8))
def test_concurrent_memory_leases_never_exceed_the_budget(needs: list[int]) -> None:
    devices = [_gpu(0, memory=1000), _gpu(1, memory=500)]
    budgets = {"gpu:0": 900.0, "gpu:1": 450.0}
    state = tempfile.mkdtemp(prefix="packing-")
    leased: dict[str, float] = defaultdict(float)
    guard = threading.Lock()
    problems: list[str] = []

    def holder(need: int) -> None:
        # One pool object per thread: only the file lock keeps them consistent.
        pool = DevicePool(
            devices, name="packing", packing="memory", memory_fraction=0.9, state_dir=state
        )
        try:
            with pool.acquire(memory_mb=need, timeout=20) as lease:
                with guard:
                    leased[lease.device.id] += need
                    if leased[lease.device.id] > budgets[lease.device.id]:
                        problems.append(f"{lease.device.id} over budget: {dict(leased)}")
                snapshot = pool.active_leases()
                for device_id, budget in budgets.items():
                    total = sum(r.memory_mb or 0.0 for r in snapshot if r.device_id == device_id)
                    if total > budget:
                        problems.append(f"snapshot over budget on {device_id}: {total}")
                time.sleep(0.001)
                with guard:
                    leased[lease.device.id] -= need
        except Exception as exc:
            problems.append(repr(exc))

    try:
        threads = [threading.Thread(target=holder, args=(need,)) for need in needs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert problems == []
    finally:
        shutil.rmtree(state, ignore_errors=True)


# -- (c) acquire/release sequences in one process ----------------------------------------------


class PoolMachine(RuleBasedStateMachine):
    """Model: the leases we hold. Checks the pool's answers and its state against it."""

    def __init__(self) -> None:
        super().__init__()
        self.state_dir = tempfile.mkdtemp(prefix="pool-machine-")
        self.devices = [
            _gpu(0, memory=1000, speed=2.0),
            _gpu(1, memory=2000),
            Device(id="cpu", kind="cpu", name="C", cores=2, slots=2, memory_total_mb=4000),
        ]
        self.budgets = {"gpu:0": 1000.0, "gpu:1": 2000.0, "cpu": 4000.0}
        self.pool: DevicePool | None = None
        self.held: list[Lease] = []
        self.released: list[Lease] = []

    @precondition(lambda self: self.pool is None)
    @rule(packing=st.sampled_from(["exclusive", "memory"]))
    def open_pool(self, packing: str) -> None:
        self.pool = DevicePool(
            self.devices,
            name="machine",
            packing=packing,
            memory_fraction=1.0,
            state_dir=self.state_dir,
        )

    def _fits_somewhere(self, memory_mb: int | None) -> bool:
        assert self.pool is not None
        for device in self.devices:
            mine = [lease for lease in self.held if lease.device.id == device.id]
            if memory_mb is not None and memory_mb > self.budgets[device.id]:
                continue
            if self.pool.packing == "exclusive" or device.kind == "cpu":
                if len(mine) < device.slots:
                    return True
            elif not mine or (
                memory_mb is not None
                and all(lease.memory_mb is not None for lease in mine)
                and sum(lease.memory_mb or 0.0 for lease in mine) + memory_mb
                <= self.budgets[device.id]
            ):
                return True
        return False

    @precondition(lambda self: self.pool is not None)
    @rule(memory_mb=st.none() | st.integers(1, 2500), prefer=st.sampled_from([None, ["cpu"]]))
    def acquire(self, memory_mb: int | None, prefer: list[str] | None) -> None:
        assert self.pool is not None
        expected = self._fits_somewhere(memory_mb)
        lease = self.pool.try_acquire(memory_mb=memory_mb, prefer=prefer)
        assert (lease is not None) == expected
        if lease is not None:
            self.held.append(lease)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        lease = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        lease.release()
        self.released.append(lease)

    @precondition(lambda self: bool(self.released))
    @rule()
    def release_again(self) -> None:
        self.released[-1].release()

    @invariant()
    def state_matches_the_model(self) -> None:
        if self.pool is None:
            return
        records = self.pool.active_leases()
        assert sorted(r.lease_id for r in records) == sorted(lease.lease_id for lease in self.held)
        exclusive = [r.slot_id for r in records if not r.slot_id.endswith("#mem")]
        assert len(exclusive) == len(set(exclusive))
        assert len(records) <= 4 or self.pool.packing == "memory"
        for device in self.devices:
            on_it = [r for r in records if r.device_id == device.id]
            if any(r.memory_mb is None for r in on_it):
                assert len(on_it) <= device.slots
            assert sum(r.memory_mb or 0.0 for r in on_it) <= self.budgets[device.id]
        for capacity in self.pool.free_capacity().values():
            assert 0 <= capacity.slots_free <= capacity.slots_total
            assert capacity.memory_available_mb is None or capacity.memory_available_mb >= 0

    def teardown(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)


PoolMachine.TestCase.settings = settings(PROPERTY, max_examples=25, stateful_step_count=20)
TestPoolMachine = PoolMachine.TestCase
