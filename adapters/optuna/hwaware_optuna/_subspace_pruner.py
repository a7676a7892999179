"""``SubspacePruner``: any optuna pruner, comparing a trial only with its own subspace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna.pruners import BasePruner, HyperbandPruner

from hwaware_optuna._peers import peer_filter
from hwaware_optuna._view import StudyView, as_study
from hwaware_plugins.errors import ConfigError

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


class SubspacePruner(BasePruner):
    """Wrap a pruner so it judges a trial against the trials of its subspace only.

    An SVM trial is no longer stopped because neural networks reached lower
    losses at the same step: the base pruner receives a view of the study whose
    trial lists hold only the trials sharing the running trial's branching
    values (the sampler's, when it is a
    :class:`~hwaware_optuna.HardwareAwareSampler`, else detected from the
    completed trials), and with ``per_device_class`` only those that ran on the
    same device class.

    Cost per call: the base pruner's, plus one predicate per past trial per
    trial-list read (plus a detection pass over completed trials when the
    study's sampler is not a HardwareAwareSampler). Thread-safe if the base
    pruner is (optuna's are).

    ``HyperbandPruner`` cannot be wrapped (it rebuilds its own study from the
    storage); give it to the study directly, where it composes with
    HardwareAwareSampler, or wrap ``SuccessiveHalvingPruner``.

    :param base_pruner: the optuna pruner deciding within the subspace.
    :param per_device_class: also restrict to the trial's device class.
    """

    def __init__(self, base_pruner: BasePruner, *, per_device_class: bool = False) -> None:
        """Store the base pruner, refusing one that cannot be wrapped.

        :raises ConfigError: ``base_pruner`` is not an optuna pruner, or is a HyperbandPruner.
        """
        check_base_pruner(base_pruner)
        self.base_pruner = base_pruner
        self.per_device_class = per_device_class

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        """The base pruner's verdict on ``trial`` among its subspace's trials.

        :raises ConfigError: ``base_pruner`` was replaced by one that cannot be wrapped.
        """
        base = self.base_pruner
        check_base_pruner(base)
        keep = peer_filter(study, trial, per_device_class=self.per_device_class)
        return bool(base.prune(as_study(StudyView(study, keep)), trial))


def check_base_pruner(base: object) -> None:
    """Refuse what :class:`SubspacePruner` cannot wrap, saying what to do instead.

    :raises ConfigError: not an optuna pruner, or a ``HyperbandPruner``.
    """
    if isinstance(base, HyperbandPruner):
        raise ConfigError(
            "SubspacePruner cannot wrap HyperbandPruner (it rebuilds the study from the "
            "storage); pass HyperbandPruner to the study directly or wrap "
            "SuccessiveHalvingPruner"
        )
    if not isinstance(base, BasePruner):
        raise ConfigError(f"SubspacePruner needs an optuna pruner as base_pruner, got {base!r}")
