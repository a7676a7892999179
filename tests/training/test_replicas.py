"""Each rank owns its replica of the caller's arguments; a pruned trial is not a rank failure."""

from __future__ import annotations

import logging

import optuna
import pytest
import torch
from optuna.pruners import ThresholdPruner
from optuna.trial import TrialState

from hwaware_plugins.cli._bench_sgd import digits_split
from hwaware_plugins.training import fit, launch

from . import _ranks

pytestmark = pytest.mark.timeout(120)


def test_a_spawned_rank_changes_its_own_copy_never_the_callers_tensor() -> None:
    t = torch.zeros(4)
    results = launch(_ranks.add_on_rank1, world_size=2, args=(t,))
    assert results == [0.0, 400.0]
    assert t.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert not t.is_shared()


def _fit_once() -> tuple[list[float | None], list[float]]:
    train, val = digits_split(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    result = fit(model, train, world_size=2, epochs=2, val_dataset=val)
    assert not any(p.is_shared() for p in model.parameters())
    flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    return [h.value for h in result.history], flat.tolist()


def test_fit_with_the_model_built_in_the_caller_is_deterministic() -> None:
    values, params = _fit_once()
    again_values, again_params = _fit_once()
    assert values == again_values
    assert params == again_params
    assert values[-1] is not None and values[-1] > 0.8


def test_a_pruned_optuna_fit_trial_is_not_reported_as_a_failure(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: every pruned ``fit`` trial printed "rank 1 failed: Traceback"."""
    train, val = digits_split(0)

    def objective(trial: optuna.trial.Trial) -> float:
        model = torch.nn.Linear(64, 10)
        lr = trial.suggest_float("lr", 0.01, 0.1)
        result = fit(
            model, train, world_size=2, epochs=1, val_dataset=val, trial=trial,
            optimizer_options={"lr": lr},
        )
        return float(result.history[-1].value or 0.0)

    study = optuna.create_study(direction="maximize", pruner=ThresholdPruner(lower=1.1))
    with caplog.at_level(logging.DEBUG, logger="hwaware_plugins"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == TrialState.PRUNED
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
    assert any("pruned" in r.getMessage() for r in caplog.records)
    stderr = capfd.readouterr().err
    assert "failed" not in stderr and "Traceback" not in stderr
