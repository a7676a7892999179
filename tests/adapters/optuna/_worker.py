"""A worker process for the storage tests: runs trials of a shared study, then exits.

Usage: python _worker.py STORAGE STUDY DEVICES STATE_DIR N_TRIALS SEED, where STORAGE is
an RDB URL or ``journal:<file>``.
"""

from __future__ import annotations

import os
import sys
import time

import optuna
from hwaware_optuna import HardwareAwareSampler, device_for
from optuna.storages.journal import JournalFileBackend, JournalStorage


def storage_of(spec: str) -> optuna.storages.BaseStorage | str:
    """An optuna storage from the command-line spec."""
    if spec.startswith("journal:"):
        return JournalStorage(JournalFileBackend(spec.removeprefix("journal:")))
    return spec


def main(
    spec: str, study_name: str, devices: str, state_dir: str, n_trials: int, seed: int
) -> None:
    """Run ``n_trials`` trials recording (slot, start, end, pid) in each trial."""
    from _helpers import two_branch  # this file's folder is on sys.path when run as a script

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = HardwareAwareSampler(devices=devices, state_dir=state_dir, seed=seed)
    study = optuna.load_study(study_name=study_name, storage=storage_of(spec), sampler=sampler)

    def objective(trial: optuna.trial.Trial) -> float:
        start = time.time()
        value = two_branch(trial)
        time.sleep(0.02)
        trial.set_user_attr("span", [device_for(trial).id, start, time.time(), os.getpid()])
        return float(value)

    study.optimize(objective, n_trials=n_trials)


if __name__ == "__main__":
    spec, name, devices, state_dir = sys.argv[1:5]
    main(spec, name, devices, state_dir, int(sys.argv[5]), int(sys.argv[6]))
