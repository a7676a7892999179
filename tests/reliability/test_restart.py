"""Restart: a coordinator killed by SIGKILL leaves no process behind, and its study resumes.

The coordinators live in :mod:`tests.reliability._coordinators`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hwaware_plugins.chaos import Ledger, chaos_devices
from hwaware_plugins.hardware._pool import DevicePool
from tests.reliability import _coordinators

ROOT = Path(__file__).resolve().parents[2]


def _start(framework: str, run_dir: Path, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability._coordinators", framework, str(run_dir),
         str(count)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _wait_for(
    condition: Callable[[], bool], timeout: float, what: str | Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out waiting for {text}")
        time.sleep(0.1)


def _kill_all(ledger: Ledger) -> None:
    """Kill what a failed test left alive: tests never leave orphans behind."""
    import psutil

    for pid in ledger.live_processes():
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


def _commands(pids: list[int]) -> str:
    import psutil

    found = []
    for pid in pids:
        try:
            found.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
        except psutil.Error:
            continue
    return "; ".join(found)


def _kill_and_check_cleanup(coordinator: subprocess.Popen[bytes], run_dir: Path) -> None:
    """SIGKILL the coordinator; its workers and their children must die; leases come back."""
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait(timeout=10)
    ledger = Ledger(run_dir)
    try:
        _wait_for(lambda: not ledger.live_processes(), 15,
                  lambda: f"the dead coordinator's processes: {_commands(ledger.live_processes())}")
    finally:
        _kill_all(ledger)
    pool = DevicePool(chaos_devices()[:2], name=_coordinators.POOL_NAME,
                      state_dir=run_dir / "pool")
    assert pool.active_leases() == []  # the dead coordinator's leases were reclaimed


def _done_in_pickle(path: Path) -> int:
    from hyperopt import base

    try:
        with open(path, "rb") as handle:
            trials = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError):
        return 0
    return sum(1 for d in trials._dynamic_trials if d["state"] == base.JOB_STATE_DONE)


@pytest.mark.timeout(180)
def test_hyperopt_run_continues_from_its_pickle_after_the_coordinator_died(
    tmp_path: Path,
) -> None:
    from hyperopt import base

    saved = tmp_path / "trials.pkl"
    coordinator = _start("hyperopt", tmp_path, 40)
    try:
        _wait_for(lambda: _done_in_pickle(saved) >= 3, 120, "three saved trials")
    finally:
        _kill_and_check_cleanup(coordinator, tmp_path)
    with open(saved, "rb") as handle:
        trials = pickle.load(handle)
    done = {d["tid"]: d["result"]["loss"] for d in trials._dynamic_trials
            if d["state"] == base.JOB_STATE_DONE}
    known = len(trials._dynamic_trials)
    resumed = _coordinators.run_hyperopt(str(tmp_path), known + 2, trials)
    after = {d["tid"]: d for d in resumed._dynamic_trials}
    for tid, loss in done.items():  # nothing completed is lost
        assert after[tid]["state"] == base.JOB_STATE_DONE
        assert after[tid]["result"]["loss"] == loss
    new_done = [d for d in resumed._dynamic_trials
                if d["tid"] >= known and d["state"] == base.JOB_STATE_DONE]
    assert len(new_done) >= 1


@pytest.mark.timeout(180)
def test_hyperopt_trials_of_a_dead_coordinator_are_failed_on_resume(tmp_path: Path) -> None:
    from hyperopt import base

    saved = tmp_path / "trials.pkl"
    coordinator = _start("hyperopt", tmp_path, 40)
    try:
        _wait_for(lambda: _done_in_pickle(saved) >= 2, 120, "two saved trials")
    finally:
        _kill_and_check_cleanup(coordinator, tmp_path)
    with open(saved, "rb") as handle:
        trials = pickle.load(handle)
    running = [d["tid"] for d in trials._dynamic_trials
               if d["state"] == base.JOB_STATE_RUNNING]
    assert running, "the pickle holds trials that were running when the coordinator died"
    resumed = _coordinators.run_hyperopt(str(tmp_path), len(trials._dynamic_trials) + 1, trials)
    after = {d["tid"]: d for d in resumed._dynamic_trials}
    for tid in running:
        assert after[tid]["state"] == base.JOB_STATE_ERROR
        kind, reason = after[tid]["misc"]["error"]
        assert kind == "CoordinatorDied" and reason.startswith("coordinator died")
    assert all(d["state"] != base.JOB_STATE_RUNNING for d in resumed._dynamic_trials)


@pytest.mark.timeout(240)
def test_optuna_study_resumes_and_fails_then_retries_trials_of_dead_workers(
    tmp_path: Path,
) -> None:
    import optuna
    from optuna.trial import TrialState

    coordinator = _start("optuna", tmp_path, 40)
    db = tmp_path / "study.db"

    def ready() -> bool:
        """Two trials completed and one inside its objective (so it has a heartbeat)."""
        if not db.exists():
            return False
        try:
            study = optuna.load_study(study_name=_coordinators.STUDY_NAME,
                                      storage=f"sqlite:///{db}")
            trials = study.get_trials(deepcopy=False)
        except Exception:
            return False
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        busy = sum(t.state == TrialState.RUNNING and "hwaware:chaos_trial" in t.user_attrs
                   for t in trials)
        return done >= 2 and busy >= 1

    try:
        _wait_for(ready, 150, "two completed trials and one running")
    finally:
        _kill_and_check_cleanup(coordinator, tmp_path)
    storage = f"sqlite:///{db}"
    before = optuna.load_study(study_name=_coordinators.STUDY_NAME, storage=storage).trials
    # Trials whose objective had started carry a heartbeat, which fails them (its callback
    # retries them); the others (placed by the sampler, or dead before their first beat) are
    # failed by their worker's dead pid and retried by optimize(max_retries=1).
    running = [t.number for t in before
               if t.state == TrialState.RUNNING and "hwaware:chaos_trial" in t.user_attrs]
    assert running
    left = [t.number for t in before if t.state == TrialState.RUNNING]
    kept = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}
    time.sleep(2.5)  # past the heartbeat's grace period
    study = _coordinators.run_optuna(str(tmp_path), 2, max_retries=1)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number, value in kept.items():  # nothing completed is lost
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == value
    for number in running:  # failed and retried once
        assert trials[number].state == TrialState.FAIL
        retries = [t for t in trials.values()
                   if t.system_attrs.get("failed_trial") == number]
        assert len(retries) == 1
        assert retries[0].user_attrs.get("hwaware:retry") == 1  # marked, whoever queued it
    assert all(trials[number].state == TrialState.FAIL for number in left)  # none stays RUNNING
    assert os.path.exists(db)


def _task_finished(ledger: Ledger, run_dir: Path) -> bool:
    """The task recorded its worker and the child it left, and its result is back."""
    return len(ledger.processes()) == 2 and (run_dir / "finished").exists()


@pytest.mark.timeout(60)
def test_no_child_of_a_finished_task_survives_a_killed_coordinator(tmp_path: Path) -> None:
    coordinator = _start("idle-worker", tmp_path, 1)
    ledger = Ledger(tmp_path)
    try:
        _wait_for(lambda: _task_finished(ledger, tmp_path), 30, "the task to finish")
        # The worker is idle and keeps the task's child: kill the coordinator now.
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=10)
        _wait_for(lambda: ledger.live_processes() == [], 10, lambda: (
            f"the idle worker and its child to die: {_commands(ledger.live_processes())}"))
        leftovers = ledger.live_processes()
    finally:
        coordinator.kill()
        _kill_all(ledger)
    assert leftovers == []
