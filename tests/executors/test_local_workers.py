"""Persistent workers: reuse per slot pinning, replacement rules, strays, executor death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from hwaware_plugins.executors import LocalExecutor
from hwaware_plugins.executors._worker import wait_for_leaving_workers
from hwaware_plugins.hardware import Device

from . import _tasks
from .conftest import GPUS

Pool = Callable[..., Any]
ONE_GPU = (GPUS[0],)


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _pids(ex: LocalExecutor, fn: Callable[..., Any], times: int, *args: Any) -> list[int]:
    outcomes = [ex.submit(fn, *args).result() for _ in range(times)]
    assert all(o.state == "complete" for o in outcomes), outcomes
    return [o.value if isinstance(o.value, int) else o.value[0] for o in outcomes]


def test_one_worker_runs_every_task_of_its_slot_and_imports_the_module_once(
    make_pool: Pool,
) -> None:
    with LocalExecutor(make_pool(ONE_GPU)) as ex:
        seen = {ex.submit(_tasks.where_imported).result().value for _ in range(4)}
        assert ex.workers_started == 1
    assert len(seen) == 1  # same pid, same import time


def test_each_cpu_slot_keeps_its_own_pinned_worker(make_pool: Pool) -> None:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores")
    cpu = Device(id="cpu-pair", kind="cpu", name="cpu", cores=2, slots=2)
    with LocalExecutor(make_pool([cpu])) as ex:
        futures = [ex.submit(_tasks.affinity_and_threads) for _ in range(8)]
        results = [f.result().value for f in futures]
    by_pid: dict[int, set[tuple[tuple[int, ...], str | None]]] = {}
    for pid, affinity, threads in results:
        by_pid.setdefault(pid, set()).add((tuple(affinity), threads))
    # Every worker always has one pinning (one core, one thread); the two slots differ.
    assert all(len(pinnings) == 1 for pinnings in by_pid.values())
    pinnings = {next(iter(p)) for p in by_pid.values()}
    assert len(by_pid) == 2 and len(pinnings) == 2
    assert all(len(affinity) == 1 and threads == "1" for affinity, threads in pinnings)


def test_a_crash_replaces_the_worker(make_pool: Pool) -> None:
    with LocalExecutor(make_pool(ONE_GPU)) as ex:
        before = ex.submit(os.getpid).result().value
        crashed = ex.submit(_tasks.exit_hard, 3).result()
        after = ex.submit(os.getpid).result().value
    assert crashed.state == "crash" and crashed.exit_code == 3
    assert before != after and _gone(before)


def test_an_oom_replaces_the_worker(make_pool: Pool) -> None:
    with LocalExecutor(make_pool(ONE_GPU), max_oom_retries=0) as ex:
        before = ex.submit(os.getpid).result().value
        oom = ex.submit(_tasks.oom_on_small, 10**6).result()
        after = ex.submit(os.getpid).result().value
    assert oom.state == "oom" and before != after


def test_a_timeout_kills_the_worker_and_the_next_task_gets_a_new_one(make_pool: Pool) -> None:
    with LocalExecutor(make_pool(ONE_GPU), kill_grace_s=0.2) as ex:
        before = ex.submit(os.getpid).result().value
        late = ex.submit(time.sleep, 30, timeout=0.5).result()
        after = ex.submit(os.getpid).result().value
    assert late.state == "timeout" and before != after and _gone(before)


def test_max_tasks_per_worker_bounds_each_workers_life(make_pool: Pool) -> None:
    with LocalExecutor(make_pool(ONE_GPU), max_tasks_per_worker=2) as ex:
        pids = _pids(ex, os.getpid, 5)
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_a_worker_whose_gpu_memory_does_not_come_back_is_replaced(
    make_pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    nvml_file = tmp_path / "nvml.toml"
    monkeypatch.setenv("HWAWARE_FAKE_NVML", str(nvml_file))
    uuid = ONE_GPU[0].uuid
    with LocalExecutor(make_pool(ONE_GPU), memory_leak_mb=256) as ex:
        def hold(mb: int) -> int:
            outcome = ex.submit(_tasks.hold_gpu_memory, str(nvml_file), uuid, mb).result()
            assert outcome.state == "complete"
            return int(outcome.value)

        first, second = hold(300), hold(500)  # 200 MiB over the first task's level: kept
        third = hold(900)  # 600 MiB over: replaced after this task
        fourth = hold(300)
    assert first == second == third != fourth


def test_bad_worker_settings_are_refused(make_pool: Pool) -> None:
    from hwaware_plugins.errors import ConfigError

    for options, text in (({"max_tasks_per_worker": 0}, "max_tasks_per_worker"),
                          ({"memory_leak_mb": -1}, "memory_leak_mb"),
                          ({"max_kept_processes": 1.5}, "max_kept_processes")):
        with pytest.raises(ConfigError, match=text):
            LocalExecutor(make_pool(ONE_GPU), **options).submit(os.getpid)


def test_an_orphan_the_task_left_is_killed_at_once_and_the_worker_stays(
    make_pool: Pool, tmp_path: Path,
) -> None:
    pid_file = tmp_path / "orphan"
    with LocalExecutor(make_pool(ONE_GPU), kill_grace_s=0.5) as ex:
        worker = ex.submit(_tasks.orphan_a_grandchild, str(pid_file)).result().value
        orphan = int(pid_file.read_text())
        killed_at_once = _gone(orphan)
        again = ex.submit(os.getpid).result().value
    assert killed_at_once and worker == again


def test_a_child_left_for_reuse_lives_with_its_worker_and_dies_with_it(
    make_pool: Pool, tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child"
    with LocalExecutor(make_pool(ONE_GPU)) as ex:
        assert ex.submit(_tasks.spawn_and_return, str(pid_file)).result().state == "complete"
        child = int(pid_file.read_text())
        alive_between_tasks = not _gone(child)
    assert alive_between_tasks and _gone(child)


def test_a_loky_pool_survives_between_tasks_and_closes_quietly_at_shutdown(
    make_pool: Pool, capfd: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("joblib")
    with LocalExecutor(make_pool(ONE_GPU)) as ex:
        first = ex.submit(_tasks.loky_pool_pids).result()
        second = ex.submit(_tasks.loky_pool_pids).result()
    assert first.state == second.state == "complete"
    assert first.value == second.value  # same worker, same two loky processes
    assert all(_gone(pid) for pid in first.value[1])
    err = capfd.readouterr().err
    assert "resource_tracker" not in err and "Traceback" not in err


def test_a_forked_worker_starts_its_own_loky_pool_when_the_coordinator_has_one(
    make_pool: Pool,
) -> None:
    # The coordinator's pool is copied into the fork without its threads and processes;
    # a task handed to that copy would wait for ever.
    pytest.importorskip("joblib")
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    mine = Parallel(n_jobs=2, backend="loky")(delayed(os.getpid)() for _ in range(4))
    try:
        with LocalExecutor(make_pool(ONE_GPU), start_method="fork") as ex:
            outcome = ex.submit(_tasks.loky_pool_pids, timeout=60).result()
        assert outcome.state == "complete", outcome
        assert not set(outcome.value[1]) & set(mine)
    finally:
        get_reusable_executor().shutdown(wait=True)


def test_workers_leave_in_the_background_and_are_gone_by_interpreter_exit(
    make_pool: Pool, tmp_path: Path,
) -> None:
    marker = tmp_path / "left"
    ex = LocalExecutor(make_pool(ONE_GPU))
    pid = ex.submit(_tasks.slow_exit_hook, str(marker), 1.0).result().value
    started = time.monotonic()
    ex.shutdown(workers_leave="background")
    returned_after = time.monotonic() - started
    still_leaving = not _gone(pid) and not marker.exists()
    wait_for_leaving_workers()  # what interpreter exit runs
    assert returned_after < 0.8 and still_leaving
    assert marker.read_text() == "done" and _gone(pid)


def test_a_loky_pool_closes_quietly_when_workers_leave_in_the_background(
    make_pool: Pool, capfd: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("joblib")
    ex = LocalExecutor(make_pool(ONE_GPU))
    outcome = ex.submit(_tasks.loky_pool_pids).result()
    ex.shutdown(workers_leave="background")
    wait_for_leaving_workers()
    assert outcome.state == "complete" and all(_gone(pid) for pid in outcome.value[1])
    err = capfd.readouterr().err
    assert "resource_tracker" not in err and "Traceback" not in err


def test_an_unknown_way_to_leave_is_refused_and_the_executor_stays_open(
    make_pool: Pool,
) -> None:
    with LocalExecutor(make_pool(ONE_GPU)) as ex:
        with pytest.raises(ValueError, match="workers_leave must be 'wait' or 'background'"):
            ex.shutdown(workers_leave="later")
        assert ex.submit(os.getpid).result().state == "complete"


_COORDINATOR = textwrap.dedent("""
    import os, sys, time
    from hwaware_plugins.executors import LocalExecutor
    from hwaware_plugins.hardware._pool import DevicePool
    from tests.executors.conftest import GPUS

    pool = DevicePool(list(GPUS[:2]), name="sigkill", state_dir=sys.argv[1],
                      skip_foreign_processes=False)
    ex = LocalExecutor(pool)
    idle = ex.submit(os.getpid, device_filter=lambda d: d.id == "gpu-small").result().value
    busy = ex.submit(time.sleep, 60, device_filter=lambda d: d.id == "gpu-mid")
    while len(ex.running_pids()) < 1:
        time.sleep(0.02)
    print(idle, ex.running_pids()[0], flush=True)
    time.sleep(60)
""")


def test_workers_leave_when_their_executor_is_sigkilled(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    coordinator = subprocess.Popen([sys.executable, "-c", _COORDINATOR, str(tmp_path)],
                                   stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert coordinator.stdout is not None
        idle, busy = (int(pid) for pid in coordinator.stdout.readline().split())
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not (_gone(idle) and _gone(busy)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        coordinator.kill()
        coordinator.wait()
    assert _gone(idle) and _gone(busy)


def test_the_time_limit_counts_from_the_callable_not_the_workers_imports(
    make_pool: Pool,
) -> None:
    from . import _slow_import

    with LocalExecutor(make_pool(ONE_GPU)) as ex:
        outcome = ex.submit(_slow_import.quick, timeout=1.0).result()
    assert outcome.state == "complete", outcome.error


def test_a_task_leaving_too_many_processes_gets_its_worker_replaced(
    make_pool: Pool, tmp_path: Path,
) -> None:
    with LocalExecutor(make_pool(ONE_GPU), max_kept_processes=0) as ex:
        first = ex.submit(_tasks.spawn_and_return, str(tmp_path / "child")).result()
        child = int((tmp_path / "child").read_text())
        child_gone = _gone(child)
        pids = _pids(ex, os.getpid, 2)
    assert first.state == "complete" and child_gone and pids[0] == pids[1]


def test_a_child_holding_the_slots_gpu_memory_is_killed_at_once(
    make_pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    nvml_file, pid_file = tmp_path / "nvml.toml", tmp_path / "child"
    monkeypatch.setenv("HWAWARE_FAKE_NVML", str(nvml_file))
    with LocalExecutor(make_pool(ONE_GPU), kill_grace_s=0.5) as ex:
        worker = ex.submit(_tasks.child_holding_gpu_memory, str(nvml_file), ONE_GPU[0].uuid,
                           str(pid_file)).result().value
        killed_at_once = _gone(int(pid_file.read_text()))
        again = ex.submit(os.getpid).result().value
    assert killed_at_once and worker == again
