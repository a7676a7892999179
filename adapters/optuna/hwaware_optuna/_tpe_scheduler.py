"""``tpe``: Optuna's TPE picks the subspace; placement is first free (a baseline).

What Optuna users run today on a conditional space: ``TPESampler`` with its
defaults chooses the branching categorical (here: the subspace) from the
losses seen so far, and the trial runs on whichever device is free. It knows
nothing of hardware and nothing of runtimes; running trials are ignored
(Optuna's default, ``constant_liar=False``), so decisions taken between two
results all see the same data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import TPESampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class

PARAM = "subspace"
"""The name of the categorical TPE samples."""


class TpeScheduler:
    """Optuna's ``TPESampler`` (defaults) chooses the subspace; any free device runs it.

    The scheduler mirrors the history into an in-memory Optuna study
    incrementally (each finished trial is added once: complete trials with
    their loss, others as failed, which TPE ignores) and asks the sampler for
    the categorical ``subspace``. The device class is ignored.

    Cost per decision: TPE's own, O(n log n) in the n results so far (it
    sorts them and builds two Parzen estimators); about 1 ms at n = 10,000.

    :param seed: seeds ``TPESampler`` (``None``: from the OS).
    """

    name = "tpe"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._keys: list[str] = []
        self._classes: frozenset[str] = frozenset()
        self._study: optuna.Study | None = None
        self._sampler: TPESampler | None = None
        self._distribution: CategoricalDistribution | None = None
        self._synced = 0
        self._stub: FrozenTrial | None = None

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Start a fresh in-memory study whose one parameter is the subspace key."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        self._keys = [s.key for s in subs]
        self._classes = frozenset(c.name for c in classes)
        self._distribution = CategoricalDistribution(self._keys)
        self._sampler = TPESampler(seed=self.seed)
        storage = optuna.storages.InMemoryStorage()
        logger = logging.getLogger("optuna.storages._in_memory")
        level = logger.level
        logger.setLevel(logging.WARNING)  # no "A new study created" line per setup
        try:
            storage.create_new_study([StudyDirection.MINIMIZE], study_name="hwaware-tpe-scheduler")
        finally:
            logger.setLevel(level)
        self._study = optuna.Study(
            study_name="hwaware-tpe-scheduler", storage=storage, sampler=self._sampler
        )
        self._synced = 0
        self._stub = create_trial(state=TrialState.RUNNING)

    def choose(self, device_class: str, history: History) -> str:
        """The subspace TPE samples given every finished trial of ``history``."""
        if self._study is None or self._sampler is None or self._distribution is None:
            raise not_set_up(self.name)
        if device_class not in self._classes:
            raise unknown_class(self.name, device_class, sorted(self._classes))
        self._sync(history)
        assert self._stub is not None
        key = self._sampler.sample_independent(self._study, self._stub, PARAM, self._distribution)
        return str(key)

    def _sync(self, history: History) -> None:
        assert self._study is not None and self._distribution is not None
        if len(history) == self._synced:
            return
        known = set(self._keys)
        trials = []
        for record in history.records_since(self._synced):
            if record["subspace"] not in known:
                continue
            complete = record["state"] == "complete" and record["loss"] is not None
            trials.append(
                create_trial(
                    params={PARAM: record["subspace"]},
                    distributions={PARAM: self._distribution},
                    value=record["loss"] if complete else None,
                    state=TrialState.COMPLETE if complete else TrialState.FAIL,
                )
            )
        self._study.add_trials(trials)
        self._synced = len(history)
        # TPE reads the study's per-thread trial cache, which Optuna's own optimize loop
        # clears before every trial; without this it would keep seeing the first snapshot
        # (no results: random sampling forever).
        self._study._thread_local.cached_all_trials = None
