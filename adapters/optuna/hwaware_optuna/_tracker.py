"""What the sampler has learned from finished trials: subspaces and the scheduler's history.

The tracker is fed :class:`~hwaware_optuna._attrs.Outcome` records (from the
study's storage, or directly by the sampler when a trial of this process ends)
and keeps:

- the branching parameters (declared ones plus detected ones);
- the known subspaces: every branch a completed trial took, plus one *stub*
  per value of a branching parameter no completed trial used yet (the
  branch's ancestors plus that value), so no value is starved;
- a :class:`~hwaware_plugins.scheduling._history.History` keyed by those
  subspaces, rebuilt from the outcomes whenever the set of subspaces changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from hwaware_optuna._attrs import Outcome, outcome_of
from hwaware_optuna._branches import Branch, BranchDetector, branch_key, branch_of, extends
from hwaware_plugins.errors import SearchSpaceError
from hwaware_plugins.scheduling._history import History

MAX_ENUMERATED_INT_VALUES = 64
"""A declared integer branch parameter with at most this many values gets stubs for unseen ones."""


@dataclass(frozen=True)
class KnownSubspace:
    """A subspace the sampler can restrict a trial to.

    :param key: e.g. ``"classifier=svm/kernel=rbf"``.
    :param branch: the branching parameters' values.
    :param params: the other parameters its completed trials used (empty for a stub).
    :param n_complete: completed trials in it.
    """

    key: str
    branch: Branch
    params: Mapping[str, BaseDistribution]
    n_complete: int


class SubspaceTracker:
    """Subspaces and history learned from finished trials.

    Not thread-safe: the sampler holds its lock around every call.
    Cost: :meth:`add` is O(parameters of the trial); :meth:`refresh` is O(new
    outcomes) unless the subspaces changed, then O(all outcomes), which happens
    a bounded number of times (each new subspace or branching parameter).
    """

    def __init__(
        self,
        *,
        declared: Collection[str] = (),
        min_support: int = 2,
        history_factory: Callable[[], History] = History,
    ) -> None:
        self._declared = frozenset(declared)
        self._detector = BranchDetector(min_support=min_support)
        self._history_factory = history_factory
        self._outcomes: list[Outcome] = []
        self._pending: list[Outcome] = []
        self._seen: set[int] = set()
        self._latest: dict[str, BaseDistribution] = {}
        self._names: frozenset[str] = self._declared
        self._subspaces: dict[str, KnownSubspace] = {}
        self._dirty = False
        self._history = history_factory()
        self._max_peak_mb: float | None = None
        self._watermark = 0
        self.version = 0
        """Increases each time the set of subspaces changes (the scheduler must be set up again)."""

    @property
    def branch_names(self) -> frozenset[str]:
        """The branching parameters in use (declared and detected)."""
        return self._names

    @property
    def subspaces(self) -> Mapping[str, KnownSubspace]:
        """The known subspaces by key (empty while nothing branches)."""
        return self._subspaces

    @property
    def history(self) -> History:
        """The scheduler's history (call :meth:`refresh` first)."""
        return self._history

    @property
    def max_peak_memory_mb(self) -> float | None:
        """The largest peak memory any finished trial reported, if any did."""
        return self._max_peak_mb

    def seen(self, trial_id: int) -> bool:
        """True when the outcome of that trial was already added."""
        return trial_id in self._seen

    def scan(self, trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> None:
        """Add every finished trial of the study's list (ordered by number) not added yet.

        Cost: O(trials from the oldest one still running), not O(all trials):
        a watermark skips the prefix of trials known to be finished and added.
        """
        start = self._watermark
        if start > len(trials) or (start and trials[start - 1].number != start - 1):
            start = 0  # not the list this watermark was taken on: scan everything
        advancing = True
        for trial in trials[start:]:
            finished = trial.state.is_finished()
            if finished and trial._trial_id not in self._seen:
                outcome = outcome_of(trial, directions)
                if outcome is not None:
                    self.add(outcome)
            if advancing and finished:
                start += 1
            else:
                advancing = False
        self._watermark = start

    def add(self, outcome: Outcome) -> None:
        """Take one finished trial (ignored if already added)."""
        if outcome.trial_id in self._seen:
            return
        self._seen.add(outcome.trial_id)
        self._outcomes.append(outcome)
        self._pending.append(outcome)
        self._latest.update(outcome.distributions)
        if outcome.peak_memory_mb is not None:
            self._max_peak_mb = max(self._max_peak_mb or 0.0, outcome.peak_memory_mb)
        if outcome.state != "complete":
            return
        categoricals = [
            name
            for name, dist in outcome.distributions.items()
            if isinstance(dist, CategoricalDistribution) and len(dist.choices) > 1
        ]
        self._detector.add(outcome.params, categoricals)
        key = branch_key(branch_of(outcome.params, self._names))
        if self._names and key not in self._subspaces:
            self._dirty = True
        elif key in self._subspaces and not (
            outcome.params.keys() - self._names <= self._subspaces[key].params.keys()
        ):
            self._dirty = True  # a subspace used a parameter for the first time

    def refresh(self) -> bool:
        """Bring subspaces and history up to date; True when the scheduler must be set up again.

        That is when the set of subspaces changed (the history is then rebuilt)
        or a subspace's parameters did (its complexity changed).

        :raises SearchSpaceError: a declared branching parameter is a float.
        """
        names = self._declared | self._detector.branching()
        if names != self._names:
            self._names = names
            self._dirty = True
        changed = keys_changed = False
        if self._dirty:
            subspaces = self._compute_subspaces()
            self._dirty = False
            keys_changed = subspaces.keys() != self._subspaces.keys()
            changed = keys_changed or any(
                s.params.keys() != self._subspaces[k].params.keys() for k, s in subspaces.items()
            )
            self._subspaces = subspaces
        if keys_changed:
            self._history = self._history_factory()
            self._record(self._outcomes)
        else:
            self._record(self._pending)
        self._pending = []
        if changed:
            self.version += 1
        return changed

    def key_of(self, params: Mapping[str, Any], placed: str | None = None) -> str | None:
        """The known subspace a trial with ``params`` belongs to, or ``None``."""
        key = branch_key(branch_of(params, self._names))
        if key in self._subspaces:
            return key
        if placed is not None and placed in self._subspaces:
            return placed
        for subspace in self._subspaces.values():
            if subspace.branch and extends(params, subspace.branch):
                return subspace.key
        return None

    def _record(self, outcomes: list[Outcome]) -> None:
        if not self._subspaces:
            return
        for outcome in outcomes:
            if outcome.device_class is None:
                continue
            key = self.key_of(outcome.params, outcome.placed_subspace)
            if key is None:
                continue
            numeric = {
                name: value
                for name, value in outcome.params.items()
                if name not in self._names and isinstance(value, int | float)
            }
            self._history.record(
                key,
                outcome.device_class,
                runtime_s=outcome.runtime_s,
                loss=outcome.loss,
                state=outcome.state,
                peak_memory_mb=outcome.peak_memory_mb,
                finished_at=outcome.finished_at,
                params=numeric,
            )

    def _compute_subspaces(self) -> dict[str, KnownSubspace]:
        if not self._names:
            return {}
        params: dict[Branch, dict[str, BaseDistribution]] = {}
        counts: dict[Branch, int] = {}
        observed: dict[str, set[Hashable]] = {name: set() for name in self._names}
        for outcome in self._outcomes:
            if outcome.state != "complete":
                continue
            branch = branch_of(outcome.params, self._names)
            counts[branch] = counts.get(branch, 0) + 1
            seen = params.setdefault(branch, {})
            for name, dist in outcome.distributions.items():
                if name in self._names:
                    observed[name].add(outcome.params[name])
                else:
                    seen[name] = dist
        found = {
            branch_key(branch): KnownSubspace(branch_key(branch), branch, params[branch], n)
            for branch, n in counts.items()
        }
        for stub in self._stubs(list(counts), observed):
            key = branch_key(stub)
            if key not in found:
                found[key] = KnownSubspace(key, stub, {}, 0)
        return dict(sorted(found.items()))

    def _stubs(self, branches: list[Branch], observed: Mapping[str, set[Hashable]]) -> list[Branch]:
        stubs: list[Branch] = []
        for name in sorted(self._names):
            dist = self._latest.get(name)
            if dist is None:
                continue
            unseen = [v for v in _values_of(name, dist) if v not in observed[name]]
            if not unseen:
                continue
            holders = [set(b) for b in branches if name in dict(b)]
            ancestors = set.intersection(*holders) if holders else set()
            base = [item for item in ancestors if item[0] != name]
            for value in unseen:
                stubs.append(tuple(sorted([*base, (name, value)], key=lambda kv: kv[0])))
        return stubs


def _values_of(name: str, dist: BaseDistribution) -> list[Any]:
    """Every value a branching parameter can take (empty when too many to list)."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution):
        n_values = (dist.high - dist.low) // dist.step + 1
        if dist.log or n_values > MAX_ENUMERATED_INT_VALUES:
            return []
        return list(range(dist.low, dist.high + 1, dist.step))
    if isinstance(dist, FloatDistribution):
        raise SearchSpaceError(
            f"branch parameter {name!r} is a float; only categorical and integer parameters "
            "can branch: remove it from branch_params"
        )
    return []
