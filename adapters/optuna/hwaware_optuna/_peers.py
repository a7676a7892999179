"""Which past trials a pruner compares a running trial with: its subspace's (and device class's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hwaware_optuna._attrs import device_class_of
from hwaware_optuna._branches import BranchDetector, branch_of, extends
from hwaware_optuna._view import Keep

if TYPE_CHECKING:
    from optuna.study import Study


def detect_branch_names(trials: list[FrozenTrial]) -> frozenset[str]:
    """The branching categoricals of completed ``trials`` (see :mod:`hwaware_optuna._branches`).

    Cost: O(trials x categoricals x parameters).
    """
    detector = BranchDetector()
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        categoricals = [
            name
            for name, dist in trial.distributions.items()
            if isinstance(dist, CategoricalDistribution) and len(dist.choices) > 1
        ]
        detector.add(trial.params, categoricals)
    return detector.branching()


def branch_names_of(study: Study) -> frozenset[str]:
    """The study's branching parameters: its ``HardwareAwareSampler``'s, else detected afresh."""
    from hwaware_optuna._sampler import HardwareAwareSampler

    sampler = study.sampler
    if isinstance(sampler, HardwareAwareSampler):
        return sampler.branch_names
    return detect_branch_names(study._get_trials(deepcopy=False, use_cache=False))


def peer_filter(study: Study, trial: FrozenTrial, *, per_device_class: bool) -> Keep:
    """A predicate keeping the trials of ``trial``'s subspace (and device class).

    A peer has every branching value ``trial`` has. With ``per_device_class``,
    a peer also ran on ``trial``'s device class (ignored when ``trial`` was not
    placed by the adapter).
    """
    branch = branch_of(trial.params, branch_names_of(study))
    device_class = device_class_of(trial) if per_device_class else None
    if device_class is None:
        return lambda t: extends(t.params, branch)
    return lambda t: extends(t.params, branch) and device_class_of(t) == device_class
