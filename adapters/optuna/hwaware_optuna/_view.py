"""A filtered, read-through view of a study: the trial lists keep only some trials.

Samplers and pruners read past trials through ``Study._get_trials`` /
``Study.get_trials`` (and pruners sometimes ``best_trial``); everything else
(directions, storage, system attributes) goes to the real study. Handing a
sampler such a view restricts what it learns from without copying anything.
Samplers that read the storage directly (``GridSampler``,
``BruteForceSampler``) are not restricted by a view.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any, cast

from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna.study import Study

Keep = Callable[[FrozenTrial], bool]


class TrialFilter:
    """A trial predicate plus a memo of its last pass over optuna's per-trial cache.

    During one trial optuna hands out the same cached list of all trials
    (``use_cache=True``), so the filter runs once per trial instead of once per
    read. Use one instance per running trial (not shared between threads).
    """

    def __init__(self, keep: Keep) -> None:
        self.keep = keep
        self._source: list[FrozenTrial] | None = None
        self._kept: list[FrozenTrial] = []

    def over(self, trials: list[FrozenTrial], *, cached: bool) -> list[FrozenTrial]:
        """The trials of ``trials`` that pass; memoised when ``trials`` is optuna's cache."""
        if cached and trials is self._source:
            return self._kept
        kept = [t for t in trials if self.keep(t)]
        if cached:
            self._source, self._kept = trials, kept
        return kept


class StudyView:
    """A study seen through a trial filter.

    Cost: each trial-list read is one predicate call per trial of the real
    study, except reads of optuna's per-trial cache, filtered once per trial.
    Thread-safety: as the wrapped study, given one filter per thread.
    """

    def __init__(self, study: Study, keep: Keep | TrialFilter) -> None:
        self._hwaware_study = study
        self._hwaware_filter = keep if isinstance(keep, TrialFilter) else TrialFilter(keep)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_hwaware_"):  # not set yet (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self._hwaware_study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        # Ask for every state so that a cached read returns optuna's list itself (memoisable).
        trials = self._hwaware_study._get_trials(deepcopy=False, states=None, use_cache=use_cache)
        kept = self._hwaware_filter.over(trials, cached=use_cache)
        if states is not None:
            kept = [t for t in kept if t.state in states]
        return copy.deepcopy(kept) if deepcopy else list(kept)

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        """The wrapped study's trials that pass the filter."""
        trials = self._hwaware_study.get_trials(deepcopy=False, states=states)
        kept = self._hwaware_filter.over(trials, cached=False)
        return copy.deepcopy(kept) if deepcopy else kept

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials that pass the filter (deep copies)."""
        return self.get_trials()

    @property
    def best_trial(self) -> FrozenTrial:
        """The best completed trial that passes the filter (single-objective studies).

        :raises ValueError: when no completed trial passes the filter (as optuna does).
        """
        study = self._hwaware_study
        if study._is_multi_objective():
            raise RuntimeError("best_trial is for single-objective studies; use best_trials")
        complete = self.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            raise ValueError("no completed trial in this subspace yet")
        pick = max if study.direction.name == "MAXIMIZE" else min
        return copy.deepcopy(pick(complete, key=lambda t: cast(float, t.value)))

    @property
    def best_value(self) -> float:
        """The objective value of :attr:`best_trial`."""
        return cast(float, self.best_trial.value)

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of :attr:`best_trial`."""
        return self.best_trial.params


def as_study(view: StudyView) -> Study:
    """The view typed as a study, for APIs that take one (it quacks like one)."""
    return cast("Study", view)
