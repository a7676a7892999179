"""LocalExecutor: pinning, results, failures and crashes, events, registration."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hwaware_plugins
from hwaware_plugins.errors import ConfigError
from hwaware_plugins.events import TrialFinished, TrialPlaced
from hwaware_plugins.executors import LocalExecutor, TaskSerializationError
from hwaware_plugins.hardware import Device
from hwaware_plugins.hookspecs import hookimpl

from . import _tasks
from .conftest import GPUS

Pool = Callable[..., Any]


class _Recorder:
    def __init__(self) -> None:
        self.placed: list[TrialPlaced] = []
        self.finished: list[TrialFinished] = []

    @hookimpl
    def hwaware_trial_placed(self, event: TrialPlaced) -> None:
        self.placed.append(event)

    @hookimpl
    def hwaware_trial_finished(self, event: TrialFinished) -> None:
        self.finished.append(event)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    plugin = _Recorder()
    hwaware_plugins.register_plugin(plugin, name="executor-test-recorder")
    yield plugin
    hwaware_plugins.unregister_plugin(plugin)


def test_task_sees_the_pinning_of_its_lease(make_pool: Pool) -> None:
    with LocalExecutor(make_pool()) as ex:
        outcome = ex.submit(_tasks.pinning, device_filter=lambda d: d.id == "gpu-mid",
                            label="trial-7").result()
    assert outcome.state == "complete" and outcome.device_id == "gpu-mid"
    assert outcome.value["CUDA_VISIBLE_DEVICES"] == GPUS[1].uuid
    assert outcome.value["HWAWARE_DEVICE_ID"] == "gpu-mid"
    assert outcome.value["HWAWARE_TASK_LABEL"] == "trial-7" == outcome.label
    assert outcome.value["HWAWARE_LEASE_ID"]
    assert outcome.exit_code == 0 and outcome.peak_memory_mb and outcome.peak_memory_mb > 0


def test_cpu_slots_are_pinned_to_their_cores(make_pool: Pool) -> None:
    import os

    cpu = Device(id="cpu", kind="cpu", name="CPU", cores=1)
    with LocalExecutor(make_pool([cpu])) as ex:
        outcome = ex.submit(os.sched_getaffinity, 0).result()
    assert outcome.state == "complete"
    assert len(outcome.value) == 1 and outcome.value <= set(os.sched_getaffinity(0))


def test_values_and_exceptions_come_back(make_pool: Pool, recorder: _Recorder) -> None:
    with LocalExecutor(make_pool(), framework="optuna") as ex:
        ok = ex.submit(_tasks.add, 2, 3, scale=10)
        bad = ex.submit(_tasks.raise_value_error, "no good")
        ok_outcome, bad_outcome = ok.result(), bad.result()
    assert ok_outcome.state == "complete" and ok_outcome.value == 50
    assert bad_outcome.state == "fail" and bad_outcome.error == "ValueError: no good"
    assert bad_outcome.traceback is not None and "in inner" in bad_outcome.traceback
    assert sorted(e.state for e in recorder.finished) == ["complete", "fail"]
    assert {e.framework for e in recorder.placed} == {"optuna"}
    assert [e.loss for e in recorder.finished if e.state == "complete"] == [50.0]


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        (_tasks.exit_hard, (3,), "exited with code 3"),
        (_tasks.kill_self, (), "SIGKILL"),
        (_tasks.segfault, (), "SIGSEGV"),
    ],
    ids=["os._exit", "sigkill", "segfault"],
)
def test_worker_death_is_a_crash_and_the_lease_comes_back(
    make_pool: Pool, fn: Callable[..., Any], args: tuple[Any, ...], expected: str
) -> None:
    pool = make_pool()
    with LocalExecutor(pool) as ex:
        outcome = ex.submit(fn, *args).result()
        assert pool.active_leases() == []
        after = ex.submit(_tasks.add, 1, 1).result()  # the executor goes on
    assert outcome.state == "crash" and expected in (outcome.error or "")
    assert outcome.attempts[0].state == "crash" and after.value == 2


def test_unpicklable_callable_is_rejected_up_front(make_pool: Pool) -> None:
    lock = threading.Lock()
    with LocalExecutor(make_pool()) as ex, pytest.raises(TaskSerializationError) as info:
        ex.submit(lambda: lock.locked())
    assert "not picklable" in str(info.value) and "\n" not in str(info.value)


def test_unpicklable_result_is_a_failure(make_pool: Pool) -> None:
    with LocalExecutor(make_pool()) as ex:
        outcome = ex.submit(_tasks.unpicklable_result).result()
    assert outcome.state == "fail" and "cannot be pickled" in (outcome.error or "")


def test_unplaceable_task_fails_with_the_reason(make_pool: Pool) -> None:
    with LocalExecutor(make_pool()) as ex:
        outcome = ex.submit(_tasks.add, 1, 2, memory_mb=10**6).result()
    assert outcome.state == "fail" and "NoSuitableDeviceError" in (outcome.error or "")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_workers": 0}, "max_workers"),
        ({"timeout": -1}, "timeout"),
        ({"oom_growth": 1.0}, "oom_growth"),
        ({"max_oom_retries": -1}, "max_oom_retries"),
        ({"python": "/nonexistent/python"}, "python"),
    ],
)
def test_bad_settings_raise_config_errors_at_first_use(
    make_pool: Pool, options: dict[str, Any], message: str
) -> None:
    ex = LocalExecutor(make_pool(), **options)  # storing never raises
    with pytest.raises(ConfigError, match=message):
        ex.submit(_tasks.add, 1, 2)


def test_registered_as_a_named_component(make_pool: Pool) -> None:
    ex = hwaware_plugins.load("executor", "local", make_pool(), max_workers=2)
    assert isinstance(ex, LocalExecutor) and ex.max_workers == 2


def test_map_yields_outcomes_in_order(make_pool: Pool) -> None:
    with LocalExecutor(make_pool()) as ex:
        values = [o.value for o in ex.map(_tasks.add, [1, 2, 3], [10, 20, 30])]
    assert values == [11, 22, 33]


def test_a_mig_without_uuid_is_refused_before_any_task_runs(make_pool: Pool) -> None:
    mig = Device(id="mig-0", kind="mig", name="1g.10gb", memory_total_mb=10_000)
    ex = LocalExecutor(make_pool([mig, *GPUS]))
    with pytest.raises(ConfigError, match=r"'mig-0' \(mig\) has neither uuid nor index.*MIG-"):
        ex.submit(_tasks.add, 1, 2)
    assert ex.workers_started == 0
