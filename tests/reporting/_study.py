"""A small real Optuna study run with HardwareAwareSampler on declared devices, for report tests.

Three devices of three classes; trials sleep a few milliseconds (longer on the
slow device); some fail with a recorded reason, some are pruned.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
from hwaware_optuna import HardwareAwareSampler, device_for

from hwaware_plugins.hardware import Device
from hwaware_plugins.reporting import FAIL_REASON

DEVICES = [
    Device(id="node/cpu", kind="cpu", name="cpu", device_class="cpu", slots=2, cores=2),
    Device(id="node/gpu:0", kind="gpu", name="A100", device_class="gpu-fast", speed=4.0, index=0),
    Device(id="node/gpu:1", kind="gpu", name="T4", device_class="gpu-slow", speed=2.0, index=1),
]
MODELS = ("svm", "mlp", "knn")
_DELAY = {"cpu": 0.02, "gpu-fast": 0.006, "gpu-slow": 0.012}


def objective(trial: optuna.trial.Trial) -> float:
    """A fake model fit: sleeps, fails (``oom``) when x > 1.3, is pruned when x < -1.4."""
    model = trial.suggest_categorical("model", list(MODELS))
    x = trial.suggest_float(f"{model}_x", -2.0, 2.0)
    device = device_for(trial)
    time.sleep(_DELAY[device.device_class] * (2.0 if model == "mlp" else 1.0))
    if x > 1.3:
        trial.set_user_attr(FAIL_REASON, "oom")
        raise MemoryError("simulated out of memory")
    if x < -1.4:
        raise optuna.TrialPruned()
    return 0.05 + 0.2 * MODELS.index(model) / 2 + (x - 0.3) ** 2 / 4


def make_study(tmp_path: Path, *, n_trials: int = 30, seed: int = 0) -> Any:
    """Run the study in memory; returns it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = HardwareAwareSampler(
        seed=seed,
        devices=DEVICES,
        pool_name=f"report-test-{seed}",
        state_dir=tmp_path / "leases",
        skip_foreign_processes=False,
    )
    study = optuna.create_study(study_name="report-test", sampler=sampler)
    study.optimize(objective, n_trials=n_trials, n_jobs=4, catch=(MemoryError,))
    return study
