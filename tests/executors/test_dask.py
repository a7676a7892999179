"""``DaskExecutor``: workers advertise their own devices; each task is pinned to one of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
hyperopt = pytest.importorskip("hyperopt")

from hwaware_plugins.executors._dask import SLOT_RESOURCE, DaskExecutor  # noqa: E402
from hwaware_plugins.hardware import Device  # noqa: E402

from . import _tasks  # noqa: E402


def _devices(worker: int) -> list[Device]:
    return [Device(id=f"w{worker}/cpu:{i}", kind="cpu", name=f"cpu-w{worker}", cores=1,
                   host=f"node{worker}") for i in range(2)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Any, DaskExecutor]]:
    with distributed.LocalCluster(n_workers=3, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        devices = {str(w): _devices(w) for w in range(3)}
        executor = DaskExecutor(client, devices=devices, state_dir=str(tmp_path))
        yield client, executor
        executor.shutdown(cancel_running=True)


def test_workers_advertise_their_devices_as_resources(cluster: Any) -> None:
    client, executor = cluster
    by_worker = executor.worker_devices()
    assert sorted(d.id for d in executor.devices()) == sorted(
        d.id for w in range(3) for d in _devices(w))
    for address, info in client.scheduler_info()["workers"].items():
        assert info["resources"][SLOT_RESOURCE] == len(by_worker[address]) == 2


def test_every_task_runs_pinned_on_a_device_of_its_worker(cluster: Any) -> None:
    _, executor = cluster
    outcomes = [f.result(timeout=60) for f in [executor.submit(_tasks.pinning)
                                               for _ in range(9)]]
    assert all(o.state == "complete" for o in outcomes)
    for outcome in outcomes:
        assert outcome.value["HWAWARE_DEVICE_ID"] == outcome.device_id
    only = executor.submit(_tasks.pinning, device_filter=_OnWorker(1)).result(timeout=60)
    assert only.device_id.startswith("w1/")
    none = executor.submit(_tasks.pinning, device_filter=_OnWorker(7)).result(timeout=60)
    assert none.state == "fail" and "NoSuitableDevice" in (none.error or "")


class _OnWorker:
    def __init__(self, worker: int) -> None:
        self.prefix = f"w{worker}/"

    def __call__(self, device: Device) -> bool:
        return device.id.startswith(self.prefix)


def test_hyperopt_trials_on_dask(cluster: Any) -> None:
    from hwaware_hyperopt import MISC_KEY, HardwareAwareTrials
    from hyperopt import fmin, hp

    _, executor = cluster
    trials = HardwareAwareTrials(executor=executor)
    fmin(abs, hp.uniform("x", -1, 1), max_evals=12, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    assert len(trials.trials) == 12 and all(t["result"]["status"] == "ok" for t in trials.trials)
    placed = Counter(t["misc"][MISC_KEY]["device_id"].split("/")[0] for t in trials.trials)
    assert set(placed) <= {"w0", "w1", "w2"} and len(placed) >= 2


def test_a_dask_worker_hosts_persistent_pinned_workers(cluster: Any) -> None:
    """Evaluations on one device reuse one worker process: imports are paid once per slot."""
    _, executor = cluster
    seen: dict[str, set[tuple[int, int]]] = {}
    runs: Counter[str] = Counter()
    for _ in range(12):
        outcome = executor.submit(_tasks.where_imported).result(timeout=60)
        assert outcome.state == "complete", outcome.error
        seen.setdefault(outcome.device_id, set()).add(tuple(outcome.value))
        runs[outcome.device_id] += 1
    # 12 tasks on 6 slots: some slot ran several, each slot always in one process.
    assert max(runs.values()) >= 2
    assert all(len(processes) == 1 for processes in seen.values()), seen
    pids = [pid for processes in seen.values() for pid, _ in processes]
    assert len(set(pids)) == len(pids)  # one process per slot pinning, none shared


def test_dask_workers_of_one_host_take_different_slots_of_its_devices(tmp_path: Path) -> None:
    # Two workers of one host given the same devices share them: running at once, they
    # never pin the same slot (each used to lease the first slot of a pool of its own).
    same = [Device(id=f"cpu:{i}", kind="cpu", name="cpu", cores=1) for i in range(2)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        executor = DaskExecutor(client, devices=same, state_dir=str(tmp_path))
        try:
            futures = [executor.submit(_tasks.sleep_and_stamp, 1.0) for _ in range(2)]
            outcomes = [f.result(timeout=60) for f in futures]
            resources = client.run(lambda dask_worker: dict(dask_worker.state.total_resources))
            assert all(r[SLOT_RESOURCE] == 1 for r in resources.values())  # one thread each
        finally:
            executor.shutdown(cancel_running=True)
    assert all(o.state == "complete" for o in outcomes)
    (a_start, a_end), (b_start, b_end) = (o.value for o in outcomes)
    assert a_start < b_end and b_start < a_end  # they ran at the same time
    assert len({o.device_id for o in outcomes}) == 2
