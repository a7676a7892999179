"""CostAwarePruner in real studies: identical trials are never pruned, a slow one is."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from hwaware_optuna import CostAwarePruner, HardwareAwareSampler
from optuna.trial import TrialState

from ._helpers import gpu


def _steps(trial: optuna.trial.Trial, *, start_up_s: float, step_s: float) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    time.sleep(start_up_s)  # data loading, model building, CUDA init
    for step in range(10):
        time.sleep(step_s)
        trial.report(1.0 / (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return 0.0


def _pruned(study: optuna.Study) -> int:
    return len(study.get_trials(states=(TrialState.PRUNED,)))


def test_start_up_cost_does_not_prune_identical_trials() -> None:
    """The issue's scenario: 0.15 s start-up, then 10 steps of 0.03 s (was: 7 of 12 pruned)."""
    study = optuna.create_study(pruner=CostAwarePruner())
    study.optimize(lambda t: _steps(t, start_up_s=0.15, step_s=0.03), n_trials=12)
    assert _pruned(study) == 0


def test_waiting_for_a_lease_does_not_prune_identical_trials(tmp_path: Path) -> None:
    """The issue's scenario: n_jobs=4 on 2 declared GPUs, so trials wait for a lease."""
    sampler = HardwareAwareSampler(
        devices=[gpu(0), gpu(1)], seed=0, state_dir=tmp_path / "pool"
    )
    study = optuna.create_study(sampler=sampler, pruner=CostAwarePruner())
    study.optimize(lambda t: _steps(t, start_up_s=0.0, step_s=0.03), n_trials=16, n_jobs=4)
    assert _pruned(study) == 0
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 16


def test_a_trial_whose_steps_are_really_slower_is_still_pruned() -> None:
    study = optuna.create_study(pruner=CostAwarePruner(k_median=3.0, min_trials=5))
    study.optimize(lambda t: _steps(t, start_up_s=0.05, step_s=0.01), n_trials=6)
    assert _pruned(study) == 0
    study.optimize(lambda t: _steps(t, start_up_s=0.0, step_s=0.08), n_trials=1)
    slow = study.trials[-1]
    assert slow.state == TrialState.PRUNED
    assert slow.last_step is not None and slow.last_step < 9
