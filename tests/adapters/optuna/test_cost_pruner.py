"""CostAwarePruner: projection of device-seconds, budget and k x median rules."""

from __future__ import annotations

import datetime
from typing import Any

import optuna
import pytest
from hwaware_optuna import CostAwarePruner
from hwaware_optuna._cost_pruner import projected_seconds, should_stop
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from hwaware_plugins.errors import ConfigError

DISTS: dict[str, Any] = {
    "classifier": CategoricalDistribution(["svm", "forest"]),
    "C": FloatDistribution(1e-3, 1e3, log=True),
    "depth": IntDistribution(1, 10),
}


def test_projection_extrapolates_linearly_from_the_reported_step() -> None:
    assert projected_seconds(20.0, 1, 9.0) == pytest.approx(100.0)  # 2 of 10 steps in 20 s
    assert projected_seconds(20.0, 9, 9.0) == 20.0  # done: no extrapolation
    assert projected_seconds(20.0, 3, None) == 20.0  # no typical final step known


def test_stop_rules() -> None:
    peers = [10.0, 11.0, 9.0, 10.0, 10.0]
    kwargs: dict[str, Any] = {"budget_device_seconds": None, "k_median": 3.0, "min_trials": 5}
    assert should_stop(31.0, peers, **kwargs) is True
    assert should_stop(29.0, peers, **kwargs) is False
    assert should_stop(31.0, peers[:4], **kwargs) is False  # too few peers for the median rule
    assert should_stop(61.0, [], budget_device_seconds=60.0, k_median=None, min_trials=5)


def _complete(study: optuna.Study, classifier: str, runtime_s: float, device_class: str) -> None:
    params = {"classifier": classifier, "depth": 3} if classifier == "forest" else {
        "classifier": classifier, "C": 1.0
    }
    number = len(study.trials)
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={k: DISTS[k] for k in params},
            value=0.5,
            intermediate_values={step: 0.5 for step in range(10)},
            user_attrs={
                "hwaware:trial": number,
                "hwaware:device_class": device_class,
                "hwaware:runtime_s": runtime_s,
            },
        )
    )


def _running(step: int, seconds_ago: float, device_class: str = "cpu") -> FrozenTrial:
    return FrozenTrial(
        number=99,
        trial_id=99,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now() - datetime.timedelta(seconds=seconds_ago),
        datetime_complete=None,
        params={"classifier": "forest", "depth": 3},
        distributions={"classifier": DISTS["classifier"], "depth": DISTS["depth"]},
        user_attrs={"hwaware:trial": 99, "hwaware:device_class": device_class},
        system_attrs={},
        intermediate_values={s: 0.5 for s in range(step + 1)},
    )


@pytest.fixture
def study() -> optuna.Study:
    study = optuna.create_study()
    for _ in range(5):
        _complete(study, "forest", 10.0, "cpu")  # forests take 10 s on the CPU
        _complete(study, "forest", 1.0, "gpu")
        _complete(study, "svm", 1000.0, "cpu")  # another subspace: must not count
    return study


def test_a_trial_projected_far_beyond_its_peers_is_pruned(study: optuna.Study) -> None:
    pruner = CostAwarePruner(k_median=3.0, min_trials=5)
    assert pruner.prune(study, _running(step=1, seconds_ago=20.0)) is True  # ~100 s > 30 s
    assert pruner.prune(study, _running(step=8, seconds_ago=9.0)) is False  # ~10 s
    # On the GPU class, 10 s for a 1 s job is far too slow.
    assert pruner.prune(study, _running(step=8, seconds_ago=9.0, device_class="gpu")) is True


def test_budget_applies_without_peers() -> None:
    empty = optuna.create_study()
    pruner = CostAwarePruner(budget_device_seconds=60.0, k_median=None)
    assert pruner.prune(empty, _running(step=2, seconds_ago=61.0)) is True
    assert pruner.prune(empty, _running(step=2, seconds_ago=30.0)) is False


def test_a_trial_without_reports_is_never_pruned(study: optuna.Study) -> None:
    trial = _running(step=0, seconds_ago=500.0)
    trial.intermediate_values = {}
    assert CostAwarePruner(budget_device_seconds=1.0).prune(study, trial) is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_device_seconds": 0}, "budget_device_seconds must be None or > 0"),
        ({"k_median": -1.0}, "k_median must be None or > 0"),
        ({"min_trials": 0}, "min_trials must be an integer >= 1"),
    ],
)
def test_bad_settings_raise_at_use(
    study: optuna.Study, kwargs: dict[str, Any], message: str
) -> None:
    pruner = CostAwarePruner(**kwargs)
    with pytest.raises(ConfigError, match=message):
        pruner.prune(study, _running(step=1, seconds_ago=1.0))
