"""ThreadExecutor: leases, current_device, state in the coordinator, failures, timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import hwaware_plugins
from hwaware_plugins.executors import LocalExecutor, ThreadExecutor, current_device
from hwaware_plugins.hardware import Device

from . import _tasks

Pool = Callable[..., Any]


def test_the_task_is_told_its_lease_and_changes_coordinator_state(make_pool: Pool) -> None:
    seen: list[Any] = []

    def objective(x: int) -> int:
        seen.append(current_device())
        return x * 2

    with ThreadExecutor(make_pool()) as ex:
        outcome = ex.submit(objective, 21, device_filter=lambda d: d.id == "gpu-mid",
                            label="trial-3").result()
    assert outcome.state == "complete" and outcome.value == 42
    running = seen[0]
    assert running.device_id == "gpu-mid" == outcome.device_id and running.label == "trial-3"
    assert running.in_thread and running.cuda_index == 1 and running.device.id == "gpu-mid"
    assert running.slot_id == outcome.slot_id and current_device() is None


def test_a_worker_process_reads_the_same_answer_from_its_environment(make_pool: Pool) -> None:
    with LocalExecutor(make_pool()) as ex:
        outcome = ex.submit(_tasks.running_on, device_filter=lambda d: d.id == "gpu-big",
                            label="t").result()
    running = outcome.value
    assert running.device_id == "gpu-big" and running.label == "t" and not running.in_thread
    assert running.slot_id == outcome.slot_id and running.device_kind == "gpu"


def test_slots_run_at_once_in_threads(make_pool: Pool) -> None:
    with ThreadExecutor(make_pool()) as ex:
        stamps = [f.result().value for f in [ex.submit(_tasks.sleep_and_stamp, 0.4)
                                             for _ in range(3)]]
    assert max(start for start, _ in stamps) < min(end for _, end in stamps)


def test_failures_and_ooms_are_outcomes(make_pool: Pool) -> None:
    with ThreadExecutor(make_pool()) as ex:
        failed = ex.submit(_tasks.raise_value_error, "bad").result()
        moved = ex.submit(_tasks.thread_oom_on_small, 6000, memory_mb=3000,
                          prefer=["gpu-small"]).result()
    assert failed.state == "fail" and failed.error == "ValueError: bad"
    assert "inner" in (failed.traceback or "")
    assert moved.state == "complete" and moved.value in ("gpu-mid", "gpu-big")
    assert [a.state for a in moved.attempts] == ["oom", "complete"]


def test_a_timed_out_thread_keeps_its_slot_until_it_returns(make_pool: Pool) -> None:
    release = threading.Event()
    only = [Device(id="gpu-only", kind="gpu", name="g", uuid="GPU-1", memory_total_mb=1000)]
    pool = make_pool(only)

    def stuck() -> str:
        release.wait(30)
        return "late"

    with ThreadExecutor(pool) as ex:
        late = ex.submit(stuck, timeout=0.2).result()
        held_while_running = len(pool.active_leases())
        release.set()
        deadline = time.monotonic() + 10
        while pool.active_leases() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert late.state == "timeout" and "cannot be killed" in (late.error or "")
    assert held_while_running == 1 and pool.active_leases() == []


def test_registered_as_thread() -> None:
    executor = hwaware_plugins.load("executor", "thread")
    assert isinstance(executor, ThreadExecutor)


def test_threads_run_on_a_mig_declared_without_uuid(make_pool: Pool) -> None:
    mig = Device(id="mig-0", kind="mig", name="1g.10gb", memory_total_mb=10_000)
    with ThreadExecutor(make_pool([mig])) as ex:
        outcome = ex.submit(lambda: current_device().device_id).result()  # type: ignore[union-attr]
    assert outcome.state == "complete" and outcome.value == "mig-0"


def test_a_thread_on_a_mig_instance_is_given_no_cuda_index() -> None:
    # Its parent GPU's index would address the whole GPU, not the instance.
    from types import SimpleNamespace

    from hwaware_plugins.executors._context import running_on_lease

    mig = Device(id="mig:0", kind="mig", name="A100 MIG 1g.5gb", uuid="MIG-1", index=0)
    lease = SimpleNamespace(device=mig, slot_id="mig:0#0", lease_id="l", cpu_affinity=None)
    assert running_on_lease(lease, "t").cuda_index is None
