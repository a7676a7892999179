"""Coordinator processes the restart tests kill: ``python -m tests.reliability._coordinators``.

``hyperopt RUN_DIR N``: ``fmin`` with ``HardwareAwareTrials`` saving to
``RUN_DIR/trials.pkl``. ``optuna RUN_DIR N``: ``hwaware_optuna.optimize`` on an
SQLite RDB storage with a heartbeat. Both place trials on two declared GPUs of
a private pool (``RUN_DIR/pool``) and run a fault-free chaos objective that
works 0.8 s, so the ledger in ``RUN_DIR`` lists every worker and its child.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hwaware_plugins.chaos import ChaosObjective, ChaosRates, chaos_devices

POOL_NAME = "restart"
STUDY_NAME = "restart"
WORK_S = (0.8, 0.8)


def objective(run_dir: str) -> ChaosObjective:
    """The fault-free objective the coordinators run.

    It spawns no child (``test_no_child_of_a_finished_task_survives_a_killed_coordinator``
    checks the children of a finished worker).
    """
    return ChaosObjective(run_dir=run_dir, rates=ChaosRates(), work_s=WORK_S, spawn_child=False)


def run_idle_worker(run_dir: str) -> None:
    """One task that leaves a child; then the coordinator waits with its worker idle.

    The persistent worker keeps the child the task left (it could be a reusable
    pool); ``RUN_DIR/finished`` says the task is done. A coordinator killed now
    leaves an idle worker and that child, which must both die on their own.
    """
    import time

    task = ChaosObjective(run_dir=run_dir, rates=ChaosRates(), work_s=(0.0, 0.0))
    with executor(run_dir) as running:
        running.submit(task, {"x": 0.0}, label="idle-worker").result()
        with open(os.path.join(run_dir, "finished"), "w") as handle:
            handle.write("done")
        time.sleep(60)


def executor(run_dir: str) -> Any:
    """A ``LocalExecutor`` on the run's private pool of two declared GPUs."""
    from hwaware_plugins.executors import LocalExecutor
    from hwaware_plugins.hardware._pool import DevicePool

    pool = DevicePool(chaos_devices()[:2], name=POOL_NAME, state_dir=os.path.join(run_dir, "pool"))
    return LocalExecutor(pool, framework="hyperopt", kill_grace_s=0.5)


def run_hyperopt(run_dir: str, max_evals: int, trials: Any = None) -> Any:
    """``fmin`` to ``max_evals`` trials, saving after every result; returns the trials."""
    import numpy as np
    from hwaware_hyperopt import HardwareAwareTrials
    from hyperopt import fmin, hp, tpe

    if trials is None:
        trials = HardwareAwareTrials(devices=chaos_devices()[:2])
    trials.executor = executor(run_dir)
    try:
        fmin(objective(run_dir), {"x": hp.uniform("x", -1, 1)}, algo=tpe.suggest,
             max_evals=max_evals, trials=trials, rstate=np.random.default_rng(0),
             catch_eval_exceptions=True, show_progressbar=False,
             trials_save_file=os.path.join(run_dir, "trials.pkl"))
    finally:
        trials.executor.shutdown(wait=True, cancel_running=True)
    return trials


def optuna_storage(run_dir: str) -> Any:
    """SQLite RDB storage with a 1 s heartbeat; stale trials are retried once."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RDBStorage(
            f"sqlite:///{os.path.join(run_dir, 'study.db')}", heartbeat_interval=1,
            grace_period=2, heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(1),
        )


def run_optuna(run_dir: str, n_trials: int, max_retries: int = 0) -> Any:
    """``hwaware_optuna.optimize`` for ``n_trials`` new trials; returns the study."""
    import optuna
    from hwaware_optuna import HardwareAwareSampler
    from hwaware_optuna._optimize import optimize

    sampler = HardwareAwareSampler(devices=chaos_devices()[:2], seed=0, scheduler="fcfs",
                                   pool_name=POOL_NAME, state_dir=os.path.join(run_dir, "pool"))
    study = optuna.create_study(study_name=STUDY_NAME, storage=optuna_storage(run_dir),
                                sampler=sampler, load_if_exists=True)
    return optimize(study, objective(run_dir), n_trials=n_trials, devices=chaos_devices()[:2],
                    max_retries=max_retries)


if __name__ == "__main__":
    framework, folder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if framework == "hyperopt":
        run_hyperopt(folder, count)
    elif framework == "idle-worker":
        run_idle_worker(folder)
    else:
        run_optuna(folder, count)
