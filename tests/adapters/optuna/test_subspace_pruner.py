"""SubspacePruner: a base pruner judging a trial among its own subspace (and device class)."""

from __future__ import annotations

from typing import Any, cast

import optuna
import pytest
from hwaware_optuna import SubspacePruner
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.pruners import HyperbandPruner, MedianPruner
from optuna.trial import FrozenTrial, TrialState

from hwaware_plugins.errors import ConfigError

DISTS: dict[str, Any] = {
    "classifier": CategoricalDistribution(["svm", "forest"]),
    "C": FloatDistribution(1e-3, 1e3, log=True),
    "depth": IntDistribution(1, 10),
}


def _params(classifier: str) -> dict[str, Any]:
    return {"classifier": classifier, "C": 1.0} if classifier == "svm" else {
        "classifier": classifier, "depth": 3
    }


def _add(study: optuna.Study, classifier: str, value: float, device_class: str = "G") -> None:
    params = _params(classifier)
    number = len(study.trials)
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={k: DISTS[k] for k in params},
            value=value,
            intermediate_values={1: value},
            user_attrs={"hwaware:trial": number, "hwaware:device_class": device_class},
        )
    )


def _running(study: optuna.Study, classifier: str, value: float, device_class: str) -> FrozenTrial:
    params = _params(classifier)
    number = len(study.trials)
    trial = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        params=params,
        distributions={k: DISTS[k] for k in params},
        intermediate_values={1: value},
        user_attrs={"hwaware:trial": number, "hwaware:device_class": device_class},
    )
    study.add_trial(trial)
    return study.trials[-1]


def _study() -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        _add(study, "svm", 0.1)
    for device_class, value in (("slow", 0.9), ("fast", 0.2)):
        for _ in range(3):
            _add(study, "forest", value, device_class)
    return study


def test_a_trial_is_compared_with_its_own_subspace_only() -> None:
    study = _study()
    trial = _running(study, "forest", 0.5, "slow")
    median = MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    # Against every trial (median 0.2) it looks bad; against forests (median 0.55) it does not.
    assert median.prune(study, trial)
    assert SubspacePruner(median).prune(study, trial) is False


def test_per_device_class_compares_with_the_same_class_only() -> None:
    study = _study()
    trial = _running(study, "forest", 0.5, "fast")
    median = MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    assert SubspacePruner(median).prune(study, trial) is False  # forests: median 0.55
    assert SubspacePruner(median, per_device_class=True).prune(study, trial) is True  # fast: 0.2


def test_works_as_the_study_pruner_with_the_hardware_aware_sampler(make_sampler: Any) -> None:
    def objective(trial: optuna.trial.Trial) -> float:
        from ._helpers import two_branch

        value = two_branch(trial)
        for step in range(5):
            trial.report(value * (5 - step), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    pruner = SubspacePruner(MedianPruner(n_startup_trials=3), per_device_class=True)
    study = optuna.create_study(sampler=make_sampler(), pruner=pruner)
    study.optimize(objective, n_trials=30)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and len(pruned) < 30


def test_hyperband_and_non_pruners_are_refused_when_built() -> None:
    with pytest.raises(ConfigError, match=r"cannot wrap HyperbandPruner.*directly") as error:
        SubspacePruner(HyperbandPruner())
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="needs an optuna pruner"):
        SubspacePruner(cast(Any, "median"))
