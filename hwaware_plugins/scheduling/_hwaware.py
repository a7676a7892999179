"""``hwaware``: learned runtimes, comparative-advantage placement, promise, no starvation."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.scheduling._base import DeviceClassInfo, SubspaceInfo
from hwaware_plugins.scheduling._common import checked_setup, not_set_up, unknown_class
from hwaware_plugins.scheduling._history import History
from hwaware_plugins.scheduling._hwaware_model import (
    allocate,
    complexity_rates,
    complexity_weights,
    decision_weights,
    declared_advantage,
    promise,
    runtime_estimates,
)


class HwawareScheduler:
    """Places subspaces where they run comparatively fastest, weighted by promise.

    Warm-up: a subspace with fewer than ``min_trials`` trials (recorded
    results of any state, or choices this scheduler made since ``setup``,
    whichever is larger, so in-flight trials count) is served before the plan.
    Among such subspaces the draw is seeded and proportional to
    ``complexity x declared advantage``: complexity normalised and floored at 1%
    of the mean (it can be 0), advantage from the class's declared per-family
    speed relative to the family's slot-weighted mean speed (1 when nothing is
    declared). Several free slots at time zero therefore spread over the
    untried subspaces instead of all taking the same one.

    Plan rebuilds (O(S x C^2 + S log n)) happen every ``max(1, refresh_every //
    5)`` new records while the history holds fewer than ``refresh_every x S``
    records, then every ``refresh_every`` records. A plan has:

    - runtime of each (subspace, class) from the history, shrunk toward a prior
      from the declared class speed and the subspace's runtimes on other classes
      (:func:`~hwaware_plugins.scheduling._hwaware_model.runtime_estimates`);
      per-family speedups are never assumed known;
    - promise of each subspace: an upper confidence bound on the chance that its
      next trial lands among the best ``top_fraction`` of all results so far.
      The bound starts from 2 pseudo-trials at a prior hit rate of
      ``top_fraction x S x normalised complexity`` (capped at 0.5), so while a
      subspace has few results the more complex ones look more promising and
      get more trials; the prior fades as ``2 / (trials + 2)``;
    - device-time shares per class by comparative advantage, with at least
      ``floor`` of the cluster's device time for every subspace
      (:func:`~hwaware_plugins.scheduling._hwaware_model.allocate`).

    A decision between refreshes is one seeded draw from the class's plan:
    O(log S), microseconds, whatever the history size (O(S) only while some
    subspace is still warming up).

    :param seed: seeds the draws.
    :param floor: device-time share guaranteed to each subspace (capped at 1/S).
    :param top_fraction: what counts as a hit (the best fraction of results).
    :param optimism: standard errors added to the hit-rate estimate.
    :param sharpness: how strongly shares follow promise per device second.
    :param prior_strength: pseudo-trials of the runtime prior.
    :param refresh_every: new records between plan rebuilds (a fifth of that early on).
    :param min_trials: trials each subspace gets before the plan decides (0: no warm-up).
    """

    name = "hwaware"

    def __init__(
        self,
        seed: int | None = None,
        *,
        floor: float = 0.02,
        top_fraction: float = 0.05,
        optimism: float = 1.0,
        sharpness: float = 2.0,
        prior_strength: float = 2.0,
        refresh_every: int = 10,
        min_trials: int = 1,
    ) -> None:
        self.seed = seed
        self.floor = floor
        self.top_fraction = top_fraction
        self.optimism = optimism
        self.sharpness = sharpness
        self.prior_strength = prior_strength
        self.refresh_every = refresh_every
        self.min_trials = min_trials
        self._rng = random.Random(seed)
        self._keys: list[str] = []
        self._classes: list[DeviceClassInfo] = []
        self._plan: dict[str, tuple[list[str], list[float]]] = {}
        self._planned_at = -1
        self._shares: list[list[float]] = []
        self._rates: list[float] = []
        self._warm_weights: dict[str, list[float]] = {}
        self._recorded: list[int] = []  # per subspace, at the last rebuild
        self._chosen: list[int] = []  # per subspace, since setup
        self._warming: list[int] = []  # subspaces still below min_trials

    def setup(
        self, subspaces: Sequence[SubspaceInfo], device_classes: Sequence[DeviceClassInfo]
    ) -> None:
        """Take the subspaces and classes; the plan is rebuilt on the next decision."""
        subs, classes = checked_setup(self.name, subspaces, device_classes)
        for name, value in (("floor", self.floor), ("top_fraction", self.top_fraction)):
            if not 0 <= value <= 1:
                raise ConfigError(f"hwaware scheduler: {name} must be in [0, 1], got {value}")
        for name, count in (("refresh_every", self.refresh_every), ("min_trials", self.min_trials)):
            lowest = 1 if name == "refresh_every" else 0
            if isinstance(count, bool) or not isinstance(count, int) or count < lowest:
                raise ConfigError(
                    f"hwaware scheduler: {name} must be an integer >= {lowest}, got {count!r}"
                )
        self._keys = [s.key for s in subs]
        self._classes = classes
        self._planned_at = -1
        self._rates = complexity_rates([s.complexity for s in subs], self.top_fraction)
        weights = complexity_weights([s.complexity for s in subs])
        advantage = declared_advantage(
            [s.family for s in subs],
            [c.speed for c in classes],
            [c.speedup for c in classes],
            [c.slots for c in classes],
        )
        self._warm_weights = {
            c.name: [w * a for w, a in zip(weights, row, strict=True)]
            for c, row in zip(classes, advantage, strict=True)
        }
        self._recorded = [0] * len(subs)
        self._chosen = [0] * len(subs)
        self._warming = list(range(len(subs))) if self.min_trials > 0 else []

    def choose(self, device_class: str, history: History) -> str:
        """A subspace for a free slot of ``device_class`` (O(log S) between plan rebuilds)."""
        if not self._keys:
            raise not_set_up(self.name)
        if len(self._keys) == 1:
            if all(c.name != device_class for c in self._classes):
                raise unknown_class(self.name, device_class, [c.name for c in self._classes])
            return self._keys[0]
        size = len(history)
        early = size < self.refresh_every * len(self._keys)
        period = max(1, self.refresh_every // 5) if early else self.refresh_every
        if self._planned_at < 0 or size - self._planned_at >= period:
            self._rebuild(history)
            self._planned_at = size
        plan = self._plan.get(device_class)
        if plan is None:
            raise unknown_class(self.name, device_class, [c.name for c in self._classes])
        if self._warming:
            chosen = self._warm_pick(device_class)
        else:
            keys, cumulative = plan
            index = bisect.bisect_right(cumulative, self._rng.random() * cumulative[-1])
            chosen = min(index, len(keys) - 1)
        self._chosen[chosen] += 1
        if chosen in self._warming and self._tried(chosen) >= self.min_trials:
            self._warming.remove(chosen)
        return self._keys[chosen]

    def shares(self) -> dict[str, dict[str, float]]:
        """The current plan's device-time share per class and subspace (for reports, tests)."""
        return {
            c.name: dict(zip(self._keys, row, strict=True))
            for c, row in zip(self._classes, self._shares, strict=True)
        }

    def _tried(self, s: int) -> int:
        return max(self._recorded[s], self._chosen[s])

    def _warm_pick(self, device_class: str) -> int:
        weights = self._warm_weights[device_class]
        cumulative = list(itertools.accumulate(weights[s] for s in self._warming))
        index = bisect.bisect_right(cumulative, self._rng.random() * cumulative[-1])
        return self._warming[min(index, len(cumulative) - 1)]

    def _rebuild(self, history: History) -> None:
        keys, classes = self._keys, self._classes
        self._recorded = [history.count(k) for k in keys]
        self._warming = [s for s in range(len(keys)) if self._tried(s) < self.min_trials]
        counts = [[history.count(k, c.name) for c in classes] for k in keys]
        sums = [[history.runtime_sum(k, c.name) for c in classes] for k in keys]
        runtimes = runtime_estimates(
            counts, sums, [c.speed for c in classes], strength=self.prior_strength
        )
        n_done = history.n_complete
        threshold = history.kth_best_loss(math.ceil(self.top_fraction * n_done))
        promises = [
            promise(
                0 if threshold is None else history.count_losses_at_most(k, threshold),
                sum(counts[i]),
                base_rate=self.top_fraction,
                optimism=self.optimism,
                prior_rate=self._rates[i],
            )
            for i, k in enumerate(keys)
        ]
        values = [[p / r for r in row] for p, row in zip(promises, runtimes, strict=True)]
        self._shares = allocate(
            values, runtimes, [c.slots for c in classes], floor=self.floor, sharpness=self.sharpness
        )
        self._plan = {}
        for ci, c in enumerate(classes):
            weights = decision_weights(self._shares[ci], [row[ci] for row in runtimes])
            self._plan[c.name] = (list(keys), list(itertools.accumulate(weights)))
