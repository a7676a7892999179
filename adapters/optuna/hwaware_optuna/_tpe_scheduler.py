"""``tpe``: Optuna's TPE picks the subspace; placement is first free (a baseline).

What Optuna users run today on a conditional space: ``TPESampler`` with its
defaults chooses the branching categorical (here: the subspace) from the
losses seen so far, and the trial runs on whichever device is free. It knows
nothing of hardware and nothing of runtimes; running trials are ignored
(``constant_liar=False``), so decisions taken between two results all see the
same data.

Two implementations of the same sampler:

- the default (``exact=False``): TPE's distribution over the subspaces in
  closed form (:mod:`hwaware_optuna._tpe_math`), kept up to date as results
  arrive, one uniform draw per decision: tens of microseconds at 10,000
  results. A test checks it against Optuna's ``TPESampler`` itself (same
  log-densities, same choice frequencies);
- ``exact=True``: Optuna's ``TPESampler`` on an in-memory study mirroring the
  history, asked at every decision: O(n) Python work per decision in
  Optuna's own code (about 40 ms at 4,000 results here), too slow for the
  simulator's thousands of decisions x seeds, kept as the reference.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import TPESampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from hwaware_optuna._tpe_math import gamma, tpe_probabilities
from hwaware_plugins.scheduling import DeviceClassInfo, History, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class

PARAM = "subspace"
"""The name of the categorical TPE samples."""
_MAX_BELOW = gamma(10**9)
"""The most results TPE ever counts as good (25): only these best results are kept sorted."""


class TpeScheduler:
    """Optuna's ``TPESampler`` (defaults) chooses the subspace; any free device runs it.

    Complete trials with a loss count as TPE's results; every other record
    (failed, pruned, out of memory, timed out) is one TPE ignores, as Optuna
    ignores failed trials. The device class is ignored.

    :param seed: seeds the draws (``None``: from the OS).
    :param exact: ``False`` (the default): the closed-form TPE of
        :mod:`hwaware_optuna._tpe_math`, updated incrementally: O(n) numpy
        work once per new result (tens of microseconds at n = 10,000), O(log K)
        per decision, with the same choice probabilities as Optuna's sampler
        (tested against it) but not the same random stream. ``True``: Optuna's
        ``TPESampler`` itself on a mirrored in-memory study, O(n) Python work
        per decision (tens of ms at thousands of results): the reference.
    """

    name = "tpe"

    def __init__(self, seed: int | None = None, *, exact: bool = False) -> None:
        self.seed = seed
        self.exact = exact
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._classes: frozenset[str] = frozenset()
        self._synced = 0
        self._study_synced = 0
        # closed-form state
        self._rng = random.Random(seed)
        self._choices = np.zeros(1024, dtype=np.intp)
        self._n = 0
        self._best: list[tuple[float, int]] = []
        self._cumulative: list[float] = []
        self._stale = True
        # Optuna state (exact=True)
        self._study: optuna.Study | None = None
        self._sampler: TPESampler | None = None
        self._distribution: CategoricalDistribution | None = None
        self._stub: FrozenTrial | None = None

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Forget every result; the subspace keys become TPE's categorical choices."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        self._keys = [s.key for s in subs]
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._classes = frozenset(c.name for c in classes)
        self._synced = 0
        self._study_synced = 0
        self._n = 0
        self._best = []
        self._stale = True
        if self.exact:
            self._setup_study()

    def choose(self, device_class: str, history: History) -> str:
        """The subspace TPE samples given every finished trial of ``history``."""
        if not self._keys:
            raise not_set_up(self.name)
        if device_class not in self._classes:
            raise unknown_class(self.name, device_class, sorted(self._classes))
        if self.exact:
            return self._choose_exact(history)
        cumulative = self._refreshed(history)
        draw = self._rng.random() * cumulative[-1]
        return self._keys[min(bisect.bisect_right(cumulative, draw), len(self._keys) - 1)]

    def probabilities(self, history: History) -> dict[str, float]:
        """The probability of each subspace being the next choice (closed form, ``exact=False``).

        What :meth:`choose` draws from; Optuna's sampler has the same
        distribution. Cost: as :meth:`choose`.
        """
        if not self._keys:
            raise not_set_up(self.name)
        cumulative = self._refreshed(history)
        steps = np.diff(np.asarray([0.0, *cumulative]))
        return {key: float(p) for key, p in zip(self._keys, steps, strict=True)}

    def _refreshed(self, history: History) -> list[float]:
        """The cumulative choice probabilities for ``history`` (recomputed when it grew)."""
        self._sync(history)
        if self._stale:
            n_choices = len(self._keys)
            probabilities = tpe_probabilities(self._choices[: self._n], self._below(), n_choices)
            self._cumulative = np.cumsum(probabilities).tolist()
            self._stale = False
        return self._cumulative

    def _below(self) -> list[int]:
        """Positions of the gamma(n) best results (lowest loss, ties: earliest)."""
        return [position for _, position in self._best[: gamma(self._n)]]

    def _sync(self, history: History) -> None:
        if len(history) == self._synced:
            return
        for record in history.records_since(self._synced):
            index = self._index.get(record["subspace"])
            if index is None or record["state"] != "complete" or record["loss"] is None:
                continue
            if self._n == len(self._choices):
                self._choices = np.concatenate([self._choices, np.zeros_like(self._choices)])
            self._choices[self._n] = index
            entry = (float(record["loss"]), self._n)
            if len(self._best) < _MAX_BELOW or entry < self._best[-1]:
                bisect.insort(self._best, entry)
                del self._best[_MAX_BELOW:]
            self._n += 1
            self._stale = True
        self._synced = len(history)

    # -- exact=True: Optuna's sampler itself ----------------------------------------------

    def _setup_study(self) -> None:
        self._distribution = CategoricalDistribution(self._keys)
        self._sampler = TPESampler(seed=self.seed, constant_liar=False)
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
        self._stub = create_trial(state=TrialState.RUNNING)

    def _choose_exact(self, history: History) -> str:
        assert self._study is not None and self._sampler is not None
        assert self._distribution is not None and self._stub is not None
        self._sync_study(history)
        key = self._sampler.sample_independent(self._study, self._stub, PARAM, self._distribution)
        return str(key)

    def _sync_study(self, history: History) -> None:
        assert self._study is not None and self._distribution is not None
        if len(history) == self._study_synced:
            return
        trials = []
        for record in history.records_since(self._study_synced):
            if record["subspace"] not in self._index:
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
        self._study_synced = len(history)
        # TPE reads the study's per-thread trial cache, which Optuna's own optimize loop
        # clears before every trial; without this it would keep seeing the first snapshot
        # (no results: random sampling forever).
        self._study._thread_local.cached_all_trials = None
